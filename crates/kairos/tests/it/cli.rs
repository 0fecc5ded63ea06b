//! The real binary: `keys create` prints one line, `migrate` creates the database, `serve`
//! answers and exits cleanly on SIGTERM, bad flags fail loudly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kairos(db: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kairos"));
    cmd.env("KAIROS_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env_remove("KAIROS_BIND")
        .env("KAIROS_LOG", "info");
    cmd
}

#[test]
fn keys_create_prints_exactly_one_line_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let out = kairos(&db).args(["keys", "create", "--account", "acme"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout:?}");
    assert!(
        lines[0].starts_with("sk_test_")
            && lines[0].len() == 40
            && lines[0][8..].bytes().all(|b| b.is_ascii_alphanumeric())
    );
    let live = kairos(&db).args(["keys", "create", "--account", "acme", "--mode", "live"]).output().unwrap();
    assert!(String::from_utf8(live.stdout).unwrap().trim().starts_with("sk_live_"));
}

#[test]
fn bad_flags_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        kairos(&dir.path().join("k.db")).args(["keys", "create", "--account", "a", "--mode", "prod"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values: test, live"));
    let out = kairos(&dir.path().join("k.db")).args(["serve", "--nope"]).output().unwrap();
    assert!(!out.status.success());
    let out = kairos(&dir.path().join("k.db")).arg("serve").env("KAIROS_BIND", "not-an-address").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KAIROS_BIND"));
}

#[test]
fn migrate_creates_the_database_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let out = kairos(&db).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.exists());
}

#[tokio::test]
async fn serve_answers_logs_request_ids_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let key =
        String::from_utf8(kairos(&db).args(["keys", "create", "--account", "acme"]).output().unwrap().stdout).unwrap();
    let mut child = kairos(&db).arg("serve").env("KAIROS_BIND", "127.0.0.1:0").stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // The first log line names the address.
    let base = crate::support::base_url_from_log(&mut stderr);
    let logs = std::thread::spawn(move || stderr.lines().map_while(Result::ok).collect::<Vec<_>>());
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{base}/v1/users"))
        .bearer_auth(key.trim())
        .header("x-request-id", "req-from-test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(client.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a clean exit after SIGTERM: {status}");
    let logs = logs.join().unwrap();
    assert!(
        logs.iter().any(|l| l.contains("req-from-test") && l.contains("/v1/users")),
        "the access log carries the request id: {logs:#?}"
    );
}
