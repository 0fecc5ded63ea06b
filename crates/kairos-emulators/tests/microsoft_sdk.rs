//! Fidelity: Microsoft's Graph SDK for Python (PyPI `msgraph-sdk`) against the Microsoft
//! emulator. The script (python/msgraph_sdk_check.py) signs in through the emulator's identity
//! platform, lists calendars, pages through a calendarView delta round and a second round with a
//! change and an `@removed`, creates (twice, one transactionId), patches and deletes events,
//! catches an `ODataError`, and creates, renews and deletes a subscription whose validation
//! handshake and notification it answers itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation should fail the test loudly

use std::process::Command;

use kairos_emulators::microsoft::MicrosoftEmulator;
use serde_json::json;

/// Whether tests that need optional peers must fail rather than skip (set by `.ci/run`).
fn peers_required() -> bool {
    std::env::var("KAIROS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn has_sdk() -> bool {
    Command::new("python3")
        .args(["-c", "import msgraph, kiota_abstractions"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn seed(emu: &MicrosoftEmulator) {
    emu.add_calendar("AAMkAD-team", "Team", false);
    let cal = emu.default_calendar_id();
    let single = |subject: &str, start: &str, end: &str, zone: &str| {
        json!({"subject": subject, "start": {"dateTime": start, "timeZone": zone},
               "end": {"dateTime": end, "timeZone": zone}})
    };
    emu.put_events(
        &cal,
        vec![
            single("Dentist", "2026-03-05T10:00:00", "2026-03-05T11:00:00", "UTC"),
            single("Lunch", "2026-03-10T12:00:00", "2026-03-10T13:00:00", "W. Europe Standard Time"),
            single("Review", "2026-03-12T15:00:00", "2026-03-12T16:00:00", "America/New_York"),
        ],
    );
    emu.put_event(
        &cal,
        json!({
            "subject": "Standup",
            "start": {"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2026-03-02T09:15:00.0000000", "timeZone": "Pacific Standard Time"},
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
                "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 3,
                          "recurrenceTimeZone": "Pacific Standard Time"}
            }
        }),
    );
    // Outside the window: never part of the rounds.
    emu.put_event(&cal, single("Later", "2026-05-01T10:00:00", "2026-05-01T11:00:00", "UTC"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_msgraph_python_sdk_reads_and_writes_the_emulator() {
    if !has_sdk() {
        assert!(!peers_required(), "KAIROS_REQUIRE_PEERS=1 but the `msgraph-sdk` package is missing");
        eprintln!("SKIPPED: the Microsoft Graph SDK check needs `pip install msgraph-sdk` (CI installs it)");
        return;
    }
    let emu = MicrosoftEmulator::start().await.unwrap();
    seed(&emu);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/msgraph_sdk_check.py");
    let base = emu.base_url();
    let out = tokio::task::spawn_blocking(move || Command::new("python3").arg(script).arg(base).output())
        .await
        .unwrap()
        .expect("python3 is needed by this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK check failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains("msgraph-sdk: all checks passed"), "{stdout}");

    // What the SDK did is what the emulator holds.
    let events = emu.events(&emu.default_calendar_id());
    let planning: Vec<_> = events.iter().filter(|e| e["transactionId"] == "sdk-check-1").collect();
    assert_eq!(planning.len(), 1, "one event for one transactionId");
    assert_eq!(planning[0]["subject"], "Planning (moved)");
    assert_eq!(planning[0]["attendees"][0]["emailAddress"]["address"], "bob@example.com");
    assert!(events.iter().all(|e| e["subject"] != "Dentist"));
    assert!(emu.subscriptions().is_empty(), "the script deleted its subscription");
    assert!(!emu.notifications().is_empty());
    assert_eq!(emu.requests("/v1.0/me/calendarView/delta"), 4, "a round of three pages, then one of one page");
}
