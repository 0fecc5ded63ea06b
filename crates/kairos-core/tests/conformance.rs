//! The recurrence conformance suite: every case of `tests/conformance/corpus.json` (RFC 5545
//! §3.8.5.3's examples and a corpus generated with python-dateutil and the icalendar package,
//! see `tests/conformance/README.md`) is parsed and expanded by Kairos and compared with the
//! independent expectation. Prints the pass rate; any failure fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kairos_core::Interval;
use kairos_core::calendar::{Calendar, InstanceTime};
use serde_json::{Value, json};

fn render(t: &InstanceTime, key: &str) -> (String, Value) {
    match t {
        InstanceTime::Instant(ts) => (key.to_string(), json!(ts.to_string())),
        InstanceTime::Floating(dt) => (format!("{key}_local"), json!(dt.strftime("%Y-%m-%dT%H:%M:%S").to_string())),
        InstanceTime::Date(d) => (format!("{key}_date"), json!(d.to_string())),
    }
}

/// Kairos's instances of one case, in the corpus's shape.
fn expand(case: &Value) -> Result<Vec<Value>, String> {
    let calendar = Calendar::parse(case["ics"].as_str().unwrap()).map_err(|e| e.to_string())?;
    if let Some(skipped) = calendar.skipped.first() {
        return Err(format!("skipped: line {}: {}", skipped.line, skipped.reason));
    }
    let at = |k: &str| case["window"][k].as_str().unwrap().parse::<Timestamp>().unwrap();
    let window = Interval::new(at("start"), at("end")).unwrap();
    Ok(calendar
        .instances(window, &TimeZone::UTC)
        .iter()
        .map(|i| {
            let (sk, sv) = render(&i.start, "start");
            let (ek, ev) = render(&i.end, "end");
            json!({ sk: sv, ek: ev })
        })
        .collect())
}

#[test]
fn kairos_expands_every_corpus_case_as_the_independent_sources_do() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/conformance/corpus.json");
    let corpus: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = corpus["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut by_source: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for case in cases {
        let source = case["source"].as_str().unwrap_or("?").split(' ').next().unwrap_or("?").to_string();
        let entry = by_source.entry(source).or_default();
        entry.1 += 1;
        let expected = case["expected"].as_array().unwrap();
        match expand(case) {
            Ok(got) if got == *expected => entry.0 += 1,
            Ok(got) => {
                let first_diff =
                    got.iter().zip(expected).position(|(g, e)| g != e).unwrap_or(got.len().min(expected.len()));
                failures.push(format!(
                    "{}: {} instances, expected {}; first difference at #{first_diff}: got {} expected {}",
                    case["name"].as_str().unwrap_or("?"),
                    got.len(),
                    expected.len(),
                    got.get(first_diff).map_or("nothing".into(), Value::to_string),
                    expected.get(first_diff).map_or("nothing".into(), Value::to_string),
                ));
            }
            Err(e) => failures.push(format!("{}: {e}", case["name"].as_str().unwrap_or("?"))),
        }
    }
    let passed: usize = by_source.values().map(|(p, _)| p).sum();
    println!("conformance: {passed}/{} cases pass ({:.1}%)", cases.len(), 100.0 * passed as f64 / cases.len() as f64);
    for (source, (p, n)) in &by_source {
        println!("  {source}: {p}/{n}");
    }
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}
