//! README.md's webhook-verification snippets, taken from the README itself and run (Python and
//! Node.js) against a real delivery: they accept it, and refuse a changed body or a wrong
//! secret. The Standard Webhooks reference library (PyPI `standardwebhooks`) must accept the
//! same delivery.

use std::process::Command;

use serde_json::json;

use crate::receiver::{Behaviour, Receiver};
use crate::support::TestApp;

/// The fenced code block of `lang` in README.md that contains `marker`.
fn snippet(lang: &str, marker: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let fence = format!("```{lang}\n");
    readme
        .split(&fence)
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(code, _)| code.to_string()))
        .find(|code| code.contains(marker))
        .unwrap_or_else(|| panic!("README.md has no {lang} block containing `{marker}`"))
}

/// Runs `program` with `args`; its stdout, trimmed. Fails the test when it does not run.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("`{program}` is needed by this test ({e}); install it (see .ci/run)"));
    assert!(out.status.success(), "{program} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether tests that need optional peers must fail rather than skip (set by `.ci/run`).
fn peers_required() -> bool {
    std::env::var("KAIROS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

struct Captured {
    secret: String,
    headers: serde_json::Value,
    body: Vec<u8>,
    dir: tempfile::TempDir,
}

/// A real `ping` delivery, its headers (lowercase names) and raw body, and the secret.
async fn captured() -> Captured {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Behaviour::Ok).await;
    let hook = app.post("/v1/webhooks", json!({"url": receiver.url(), "events": ["*"]})).await;
    assert_eq!(hook.status, 201, "{}", hook.body);
    let id = hook.body["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/v1/webhooks/{id}/test"), json!({})).await.status, 202);
    let request = receiver.wait_for(1, std::time::Duration::from_secs(10)).await.remove(0);
    let headers: serde_json::Map<String, serde_json::Value> =
        request.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), &request.body).unwrap();
    std::fs::write(dir.path().join("headers.json"), serde_json::Value::Object(headers.clone()).to_string()).unwrap();
    Captured {
        secret: hook.body["secret"].as_str().unwrap().to_string(),
        headers: serde_json::Value::Object(headers),
        body: request.body.clone(),
        dir,
    }
}

#[tokio::test]
async fn the_readme_python_verifier_accepts_real_deliveries_and_refuses_forgeries() {
    let c = captured().await;
    let program = format!(
        "{}\nimport json, sys\nheaders = json.load(open(sys.argv[1]))\nbody = open(sys.argv[2], 'rb').read()\n\
         secret = sys.argv[3]\nprint(verify(secret, headers, body), verify(secret, headers, body + b' '), \
         verify('whsec_' + 'A' * 44, headers, body))",
        snippet("python", "def verify(")
    );
    let dir = c.dir.path();
    let out = run(
        "python3",
        &["-c", &program, dir.join("headers.json").to_str().unwrap(), dir.join("body").to_str().unwrap(), &c.secret],
    );
    assert_eq!(out, "True False False");
}

#[tokio::test]
async fn the_readme_node_verifier_accepts_real_deliveries_and_refuses_forgeries() {
    let c = captured().await;
    let signature = c.headers["x-webhook-signature"].as_str().unwrap();
    let program = format!(
        "{}\nconst fs = require('fs')\nconst [file, sig, secret] = process.argv.slice(1)\nconst body = fs.readFileSync(file)\n\
         console.log(verifyKairosSignature(body, sig, secret), verifyKairosSignature(Buffer.concat([body, Buffer.from(' ')]), sig, secret), \
         verifyKairosSignature(body, sig, 'whsec_wrong'), verifyKairosSignature(body, undefined, secret))",
        snippet("js", "function verifyKairosSignature")
    );
    let out = run("node", &["-e", &program, c.dir.path().join("body").to_str().unwrap(), signature, &c.secret]);
    assert_eq!(out, "true false false false");
}

#[tokio::test]
async fn the_standard_webhooks_reference_library_verifies_deliveries() {
    let has_library =
        Command::new("python3").args(["-c", "import standardwebhooks"]).output().is_ok_and(|o| o.status.success());
    if !has_library {
        assert!(!peers_required(), "KAIROS_REQUIRE_PEERS=1 but the `standardwebhooks` package is missing");
        eprintln!("SKIPPED: the Standard Webhooks check needs `pip install standardwebhooks` (CI installs it)");
        return;
    }
    let c = captured().await;
    let program = "import json, sys\nfrom standardwebhooks.webhooks import Webhook\n\
                   headers = json.load(open(sys.argv[1]))\nbody = open(sys.argv[2], 'rb').read()\n\
                   print(Webhook(sys.argv[3]).verify(body, headers)['type'])\n\
                   try:\n    Webhook(sys.argv[3]).verify(body + b' ', headers)\n    print('forgery accepted')\n\
                   except Exception:\n    print('forgery refused')";
    let dir = c.dir.path();
    let out = run(
        "python3",
        &["-c", program, dir.join("headers.json").to_str().unwrap(), dir.join("body").to_str().unwrap(), &c.secret],
    );
    assert_eq!(out, "ping\nforgery refused");
    assert_eq!(c.body.first(), Some(&b'{'));
}
