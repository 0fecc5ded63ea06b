//! The CalDAV adapter against a real Radicale (PyPI `radicale`) on 127.0.0.1: discovery,
//! full and incremental sync (sync-collection, and the ctag/etag fallback), write-back with
//! preconditions, free/busy; plus transport and protocol failures against stub servers.
//!
//! Tests that need Radicale print a loud SKIP when it is missing, and fail instead when
//! `KAIROS_REQUIRE_PEERS=1` (as CI sets).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation should fail the test loudly

use kairos_core::Interval;
use kairos_core::calendar::Calendar;
use kairos_emulators::radicale::Radicale;
use kairos_providers::caldav::CalDav;
use kairos_providers::{
    Change, Credentials, DraftAttendee, EventDraft, Provider, ProviderError, RemoteItem, SyncResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

fn peers_required() -> bool {
    std::env::var("KAIROS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

async fn radicale() -> Option<Radicale> {
    match Radicale::start().await {
        Ok(Some(server)) => Some(server),
        Ok(None) => {
            assert!(
                !peers_required(),
                "KAIROS_REQUIRE_PEERS=1 but radicale is missing: python3 -m pip install radicale"
            );
            eprintln!("SKIPPED: the CalDAV tests need Radicale: `python3 -m pip install radicale` (CI installs it)");
            None
        }
        Err(e) => panic!("radicale is installed but did not start: {e}"),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn caldav(url: &str) -> CalDav {
    CalDav::new(client(), Url::parse(url).unwrap())
}

fn basic(user: &str) -> Credentials {
    Credentials::Basic { username: user.into(), password: "secret".into() }
}

fn alice() -> Credentials {
    basic("alice")
}

fn window(start: &str, end: &str) -> Interval {
    Interval::new(start.parse().unwrap(), end.parse().unwrap()).unwrap()
}

fn any_window() -> Interval {
    window("2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z")
}

const BERLIN: &str = "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
TZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\n\
TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n\
END:STANDARD\r\nEND:VTIMEZONE\r\n";

fn vcalendar(body: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//Another client//EN\r\n{body}END:VCALENDAR\r\n")
}

fn event(uid: &str, start: &str, end: &str, extra: &str) -> String {
    vcalendar(&format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{uid}\r\n{extra}END:VEVENT\r\n"
    ))
}

/// A daily stand-up in Berlin from 22 March 2027 (ten days, across the switch to summer time
/// on the 28th), its 24 March instance moved from 09:00 to 11:00.
fn standup() -> String {
    vcalendar(&format!(
        "{BERLIN}BEGIN:VEVENT\r\nUID:standup@test\r\nDTSTAMP:20270101T000000Z\r\n\
DTSTART;TZID=Europe/Berlin:20270322T090000\r\nDTEND;TZID=Europe/Berlin:20270322T091500\r\nRRULE:FREQ=DAILY;COUNT=10\r\n\
SUMMARY:Standup\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:standup@test\r\nDTSTAMP:20270101T000000Z\r\n\
RECURRENCE-ID;TZID=Europe/Berlin:20270324T090000\r\nDTSTART;TZID=Europe/Berlin:20270324T110000\r\n\
DTEND;TZID=Europe/Berlin:20270324T111500\r\nSUMMARY:Standup (moved)\r\nEND:VEVENT\r\n"
    ))
}

fn all_day(uid: &str, date: &str, next: &str) -> String {
    vcalendar(&format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART;VALUE=DATE:{date}\r\nDTEND;VALUE=DATE:{next}\r\nSUMMARY:Away\r\nEND:VEVENT\r\n"
    ))
}

fn todo() -> String {
    vcalendar("BEGIN:VTODO\r\nUID:milk@test\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Buy milk\r\nEND:VTODO\r\n")
}

fn upserts(result: &SyncResult) -> Vec<&RemoteItem> {
    result.changes.iter().filter_map(|c| if let Change::Upsert(i) = c { Some(i) } else { None }).collect()
}

fn ids(result: &SyncResult) -> Vec<String> {
    let mut ids: Vec<String> = result
        .changes
        .iter()
        .map(|c| match c {
            Change::Upsert(i) => format!("upsert {}", i.id),
            Change::Removed { id } => format!("removed {id}"),
        })
        .collect();
    ids.sort();
    ids
}

/// Every item's VEVENTs in one VCALENDAR, read by the calendar core.
fn parse(items: &[&RemoteItem]) -> Calendar {
    let body: String = items.iter().map(|i| i.ical.as_str()).collect();
    let calendar = Calendar::parse(&format!("BEGIN:VCALENDAR\r\n{body}END:VCALENDAR\r\n")).unwrap();
    assert!(calendar.skipped.is_empty(), "{:?}", calendar.skipped);
    calendar
}

fn starts(calendar: &Calendar, window: Interval) -> Vec<String> {
    let utc = jiff::tz::TimeZone::UTC;
    calendar
        .instances(window, &utc)
        .iter()
        .map(|i| format!("{} {}", i.start.instant(&utc), i.event.summary.as_deref().unwrap_or("")))
        .collect()
}

#[tokio::test]
async fn discovery_finds_the_event_calendars_from_the_root_a_home_or_a_collection_url() {
    let Some(server) = radicale().await else { return };
    let work = server.make_calendar("alice", "work", "Work").await;
    let home = server.make_calendar("alice", "home", "Home & garden").await;
    server.make_collection("alice", "tasks", "Tasks", &["VTODO"]).await;
    server.make_calendar("bob", "private", "Bob's").await;
    server.set_timezone(&work, &vcalendar(BERLIN)).await;

    for account in [format!("{}/", server.base_url()), server.base_url(), format!("{}/alice/", server.base_url())] {
        let mut calendars = caldav(&account).list_calendars(&alice()).await.unwrap();
        calendars.sort_by(|a, b| a.id.cmp(&b.id));
        let shown: Vec<(&str, &str, bool)> =
            calendars.iter().map(|c| (c.id.as_str(), c.name.as_str(), c.writable)).collect();
        assert_eq!(shown, [(home.as_str(), "Home & garden", true), (work.as_str(), "Work", true)], "from {account}");
        assert_eq!(calendars.iter().filter(|c| c.primary).count(), 1, "from {account}");
        let zones: Vec<Option<&str>> = calendars.iter().map(|c| c.timezone.as_deref()).collect();
        assert_eq!(zones, [None, Some("Europe/Berlin")], "from {account}");
    }

    let one = caldav(&work).list_calendars(&alice()).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!((one[0].id.as_str(), one[0].name.as_str(), one[0].primary), (work.as_str(), "Work", true));
    assert_eq!(one[0].timezone.as_deref(), Some("Europe/Berlin"));
    let without_slash = caldav(work.trim_end_matches('/')).list_calendars(&alice()).await.unwrap();
    assert_eq!(without_slash.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), [work.as_str()]);

    let bobs = caldav(&server.base_url()).list_calendars(&basic("bob")).await.unwrap();
    assert_eq!(bobs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Bob's"], "each user sees their own");
}

#[tokio::test]
async fn a_full_sync_reads_every_event_including_a_moved_instance_and_an_all_day_one() {
    let Some(server) = radicale().await else { return };
    let work = server.make_calendar("alice", "work", "Work").await;
    server.put_ics(&work, "team lunch.ics", &event("lunch@test", "20270323T120000Z", "20270323T130000Z", "")).await;
    server.put_ics(&work, "standup.ics", &standup()).await;
    server.put_ics(&work, "away.ics", &all_day("away@test", "20270325", "20270326")).await;
    server.put_ics(&work, "milk.ics", &todo()).await;

    let result = caldav(&server.base_url()).sync(&alice(), &work, None, any_window()).await.unwrap();
    assert!(result.full);
    assert!(result.cursor.as_deref().is_some_and(|c| c.starts_with("sync:")), "{:?}", result.cursor);
    assert_eq!(
        ids(&result),
        ["upsert /alice/work/away.ics", "upsert /alice/work/standup.ics", "upsert /alice/work/team%20lunch.ics"],
        "the task is not an event"
    );
    let items = upserts(&result);
    for item in &items {
        assert!(item.etag.as_deref().is_some_and(|e| e.starts_with('"')), "{item:?}");
        assert!(!item.ical.contains("VCALENDAR") && !item.ical.contains("PRODID"), "{}", item.ical);
        let tags = item.ical.matches(&format!("X-KAIROS-REMOTE-ID:{}\r\n", item.id)).count();
        assert_eq!(tags, item.ical.matches("BEGIN:VEVENT").count(), "{}", item.ical);
    }
    let standup = items.iter().find(|i| i.id.ends_with("standup.ics")).unwrap();
    assert!(standup.ical.contains("BEGIN:VTIMEZONE"), "{}", standup.ical);

    let calendar = parse(&items);
    assert_eq!(
        starts(&calendar, window("2027-03-22T00:00:00Z", "2027-03-31T00:00:00Z")),
        [
            "2027-03-22T08:00:00Z Standup",
            "2027-03-23T08:00:00Z Standup",
            "2027-03-23T12:00:00Z lunch@test",
            "2027-03-24T10:00:00Z Standup (moved)",
            "2027-03-25T00:00:00Z Away",
            "2027-03-25T08:00:00Z Standup",
            "2027-03-26T08:00:00Z Standup",
            "2027-03-27T08:00:00Z Standup",
            "2027-03-28T07:00:00Z Standup",
            "2027-03-29T07:00:00Z Standup",
            "2027-03-30T07:00:00Z Standup",
        ],
        "09:00 Berlin is 08:00Z before 28 March and 07:00Z after"
    );
}

/// Puts three events, syncs fully, then changes the calendar "on the server" and checks that
/// the next sync reports exactly those changes.
async fn incremental_sync_sees_exactly_the_server_side_changes(
    provider: CalDav,
    server: &Radicale,
    cursor_prefix: &str,
) {
    let work = server.make_calendar("alice", "work", "Work").await;
    server.put_ics(&work, "a.ics", &event("a@test", "20270301T100000Z", "20270301T110000Z", "")).await;
    server.put_ics(&work, "b.ics", &event("b@test", "20270302T100000Z", "20270302T110000Z", "")).await;
    server.put_ics(&work, "c.ics", &event("c@test", "20270303T100000Z", "20270303T110000Z", "")).await;
    let first = provider.sync(&alice(), &work, None, any_window()).await.unwrap();
    assert!(first.full);
    assert_eq!(upserts(&first).len(), 3);
    let cursor = first.cursor.clone().unwrap();
    assert!(cursor.starts_with(cursor_prefix), "{cursor}");

    let quiet = provider.sync(&alice(), &work, Some(&cursor), any_window()).await.unwrap();
    assert!(!quiet.full);
    assert_eq!(quiet.changes, []);

    server
        .put_ics(&work, "b.ics", &event("b@test", "20270302T150000Z", "20270302T160000Z", "LOCATION:Moved\r\n"))
        .await;
    server.delete(&format!("{work}c.ics")).await;
    server.put_ics(&work, "d.ics", &all_day("d@test", "20270304", "20270305")).await;
    let next = provider.sync(&alice(), &work, quiet.cursor.as_deref(), any_window()).await.unwrap();
    assert!(!next.full);
    assert_eq!(ids(&next), ["removed /alice/work/c.ics", "upsert /alice/work/b.ics", "upsert /alice/work/d.ics"]);
    let b = upserts(&next).into_iter().find(|i| i.id.ends_with("b.ics")).unwrap();
    assert!(b.ical.contains("DTSTART:20270302T150000Z") && b.ical.contains("LOCATION:Moved"), "{}", b.ical);
    let old_b = upserts(&first).into_iter().find(|i| i.id.ends_with("b.ics")).unwrap();
    assert_ne!(b.etag, old_b.etag);

    let after = provider.sync(&alice(), &work, next.cursor.as_deref(), any_window()).await.unwrap();
    assert_eq!(after.changes, [], "the new cursor starts after those changes");
}

#[tokio::test]
async fn server_side_changes_are_picked_up_incrementally_with_sync_collection() {
    let Some(server) = radicale().await else { return };
    incremental_sync_sees_exactly_the_server_side_changes(caldav(&server.base_url()), &server, "sync:").await;
}

#[tokio::test]
async fn server_side_changes_are_picked_up_incrementally_by_ctag_and_etags() {
    let Some(server) = radicale().await else { return };
    let provider = caldav(&server.base_url()).without_sync_collection();
    incremental_sync_sees_exactly_the_server_side_changes(provider, &server, "etags:=").await;
}

#[tokio::test]
async fn an_invalid_or_foreign_cursor_expires() {
    let Some(server) = radicale().await else { return };
    let work = server.make_calendar("alice", "work", "Work").await;
    let provider = caldav(&server.base_url());
    let unknown = format!("sync:http://radicale.org/ns/sync/{}", "0".repeat(64));
    for cursor in [unknown.as_str(), "sync:http://radicale.org/ns/sync/bogus", "not a cursor", "etags:"] {
        let err = provider.sync(&alice(), &work, Some(cursor), any_window()).await.unwrap_err();
        assert_eq!(err, ProviderError::CursorExpired, "{cursor}");
    }
}

fn draft(uid: &str, title: &str) -> EventDraft {
    EventDraft {
        uid: uid.into(),
        title: title.into(),
        description: Some("Booked through Kairos.\nSee you there".into()),
        start: "2027-03-10T14:00:00Z".parse().unwrap(),
        end: "2027-03-10T14:30:00Z".parse().unwrap(),
        timezone: "Europe/Berlin".into(),
        attendees: vec![DraftAttendee { email: "ana@example.com".into(), name: Some("Ana Ruiz".into()) }],
    }
}

#[tokio::test]
async fn created_updated_and_deleted_events_are_written_back_with_preconditions() {
    let Some(server) = radicale().await else { return };
    let work = server.make_calendar("alice", "work", "Work").await;
    let provider = caldav(&server.base_url());
    let url = |item: &RemoteItem| format!("{}{}", server.base_url(), item.id);

    let created = provider.create_event(&alice(), &work, &draft("bk_1", "Intro call")).await.unwrap();
    assert_eq!(created.id, "/alice/work/bk_1.ics");
    let stored = server.get(&url(&created)).await.unwrap();
    for line in ["UID:bk_1", "SUMMARY:Intro call", "DTSTART:20270310T140000Z", "DTEND:20270310T143000Z", "SEQUENCE:0"] {
        assert!(stored.contains(line), "{line} in {stored}");
    }
    assert!(stored.contains("PARTSTAT=NEEDS-ACTION") && stored.contains("mailto:ana@example.com"), "{stored}");
    let synced = provider.sync(&alice(), &work, None, any_window()).await.unwrap();
    assert_eq!(upserts(&synced).iter().map(|i| (&i.id, &i.etag)).collect::<Vec<_>>(), [(&created.id, &created.etag)]);
    let calendar = parse(&[&created]);
    assert_eq!(starts(&calendar, any_window()), ["2027-03-10T14:00:00Z Intro call"]);

    let updated = provider
        .update_event(&alice(), &work, &created.id, created.etag.as_deref(), &draft("bk_1", "Intro call (moved)"))
        .await
        .unwrap();
    assert_eq!(updated.id, created.id);
    assert_ne!(updated.etag, created.etag);
    let stored = server.get(&url(&updated)).await.unwrap();
    assert!(stored.contains("SUMMARY:Intro call (moved)") && stored.contains("SEQUENCE:1"), "{stored}");

    let stale =
        provider.update_event(&alice(), &work, &created.id, created.etag.as_deref(), &draft("bk_1", "Lost")).await;
    assert_eq!(stale.unwrap_err(), ProviderError::Conflict);
    let stale = provider.delete_event(&alice(), &work, &created.id, created.etag.as_deref()).await;
    assert_eq!(stale.unwrap_err(), ProviderError::Conflict);
    assert!(server.get(&url(&updated)).await.unwrap().contains("Intro call (moved)"), "a stale write changes nothing");

    provider.delete_event(&alice(), &work, &updated.id, updated.etag.as_deref()).await.unwrap();
    assert_eq!(server.get(&url(&updated)).await, None);
    provider.delete_event(&alice(), &work, &updated.id, None).await.unwrap();
    let gone = provider.update_event(&alice(), &work, &updated.id, None, &draft("bk_1", "Again")).await;
    assert!(matches!(gone, Err(ProviderError::NotFound(_))), "{gone:?}");
}

#[tokio::test]
async fn a_retried_create_updates_its_first_attempt_instead_of_duplicating_it() {
    let Some(server) = radicale().await else { return };
    let work = server.make_calendar("alice", "work", "Work").await;
    let provider = caldav(&server.base_url());
    let first = provider.create_event(&alice(), &work, &draft("bk_2", "First try")).await.unwrap();
    let second = provider.create_event(&alice(), &work, &draft("bk_2", "Second try")).await.unwrap();
    assert_eq!(second.id, first.id);
    // Another client stored an event with this UID under a name of its own.
    server.put_ics(&work, "elsewhere.ics", &event("bk_3", "20270311T090000Z", "20270311T100000Z", "")).await;
    let third = provider.create_event(&alice(), &work, &draft("bk_3", "Found where it was")).await.unwrap();
    assert_eq!(third.id, "/alice/work/elsewhere.ics");

    let all = provider.sync(&alice(), &work, None, any_window()).await.unwrap();
    let mut titles: Vec<String> =
        parse(&upserts(&all)).events.iter().map(|e| e.summary.clone().unwrap_or_default()).collect();
    titles.sort();
    assert_eq!(titles, ["Found where it was", "Second try"]);
    assert!(server.get(&format!("{}{}", server.base_url(), first.id)).await.unwrap().contains("SEQUENCE:1"));
}

#[tokio::test]
async fn free_busy_expands_series_and_leaves_out_free_cancelled_and_declined_time() {
    let Some(server) = radicale().await else { return };
    let me = "ann@example.com";
    let work = server.make_calendar(me, "work", "Work").await;
    let holidays = server.make_calendar(me, "holidays", "Holidays").await;
    server.put_ics(&work, "standup.ics", &standup()).await;
    server.put_ics(&work, "busy.ics", &event("busy", "20270323T120000Z", "20270323T130000Z", "")).await;
    server
        .put_ics(&work, "free.ics", &event("free", "20270323T140000Z", "20270323T150000Z", "TRANSP:TRANSPARENT\r\n"))
        .await;
    server
        .put_ics(&work, "off.ics", &event("off", "20270323T160000Z", "20270323T170000Z", "STATUS:CANCELLED\r\n"))
        .await;
    let declined = format!("ORGANIZER:mailto:boss@example.com\r\nATTENDEE;PARTSTAT=DECLINED:mailto:{me}\r\n");
    server.put_ics(&work, "declined.ics", &event("declined", "20270324T150000Z", "20270324T160000Z", &declined)).await;
    server.put_ics(&work, "later.ics", &event("later", "20270401T100000Z", "20270401T110000Z", "")).await;
    server.put_ics(&holidays, "away.ics", &all_day("away", "20270325", "20270326")).await;

    let provider = caldav(&server.base_url());
    let busy = provider
        .free_busy(
            &basic(me),
            &[work.clone(), holidays.clone()],
            window("2027-03-23T00:00:00Z", "2027-03-26T00:00:00Z"),
        )
        .await
        .unwrap();
    let shown: Vec<String> = busy.iter().map(|i| format!("{}..{}", i.start(), i.end())).collect();
    assert_eq!(
        shown,
        [
            "2027-03-23T08:00:00Z..2027-03-23T08:15:00Z",
            "2027-03-23T12:00:00Z..2027-03-23T13:00:00Z",
            "2027-03-24T10:00:00Z..2027-03-24T10:15:00Z",
            "2027-03-25T00:00:00Z..2027-03-26T00:00:00Z",
        ],
        "the moved stand-up, the busy event and the all-day absence (the 25th's stand-up merged into it)"
    );
}

#[tokio::test]
async fn watch_has_nothing_to_offer_on_caldav() {
    let provider = caldav("http://127.0.0.1:9/");
    let channel =
        provider.watch(&alice(), "http://127.0.0.1:9/a/b/", "https://x", "t", jiff::Timestamp::UNIX_EPOCH).await;
    assert_eq!(channel, Ok(None));
}

#[tokio::test]
async fn a_wrong_scheme_or_an_unreachable_server_is_a_transport_error() {
    let err = caldav("ftp://127.0.0.1/dav/").list_calendars(&alice()).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Transport(m) if m.contains("ftp")), "{err:?}");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = format!("http://127.0.0.1:{port}/");
    let provider = caldav(&closed);
    let err = provider.list_calendars(&alice()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Transport(_)), "{err:?}");
    let err = provider.sync(&alice(), &format!("{closed}alice/work/"), None, any_window()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Transport(_)), "{err:?}");
}

/// A one-answer HTTP server: every request gets `response` (a whole HTTP/1.1 message).
async fn stub(response: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        // Bounded: a test makes a handful of requests.
        for _ in 0..50 {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    url
}

#[tokio::test]
async fn refused_credentials_are_unauthorized() {
    let url = stub(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"dav\"\r\nContent-Length: 12\r\nConnection: close\r\n\r\nUnauthorized",
    )
    .await;
    let err = caldav(&url).list_calendars(&alice()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    let err = caldav(&url).sync(&alice(), &format!("{url}alice/work/"), None, any_window()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
}

#[tokio::test]
async fn a_server_that_is_not_caldav_is_a_protocol_error() {
    let html = stub(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 24\r\nConnection: close\r\n\r\n<html>A web site.</html>",
    )
    .await;
    let err = caldav(&html).list_calendars(&alice()).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Protocol(m) if m.contains("not a CalDAV server")), "{err:?}");

    let refused =
        stub("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    let err = caldav(&format!("{refused}dav/")).list_calendars(&alice()).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Protocol(m) if m.contains("not a CalDAV server")), "{err:?}");
}

/// A scripted HTTP server: `answer(method, head, body)` gives each request's status and XML body.
async fn scripted(answer: fn(&str, &str, &str) -> (u16, String)) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        for _ in 0..50 {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            let head_end = loop {
                if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            };
            let head = String::from_utf8_lossy(&request[..head_end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while request.len() < head_end + length {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = String::from_utf8_lossy(&request[head_end..]).to_string();
            let method = head.split(' ').next().unwrap_or_default().to_string();
            let (status, text) = answer(&method, &head, &body);
            let response = format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Type: application/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    url
}

fn multiget_answer(body: &str) -> String {
    let responses: String = ["/cal/a.ics", "/cal/b@x.ics"]
        .iter()
        .filter(|href| body.contains(*href))
        .map(|href| {
            format!(
                "<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>\"{href}-1\"</d:getetag>\
                 <c:calendar-data>BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:{href}\r\nDTSTART:20270301T100000Z\r\n\
                 DTEND:20270301T110000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n</c:calendar-data></d:prop>\
                 <d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
            )
        })
        .collect();
    format!(r#"<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">{responses}</d:multistatus>"#)
}

#[tokio::test]
async fn a_server_without_sync_collection_is_synced_by_ctag_and_etags() {
    let url = scripted(|method, head, body| match method {
        "REPORT" if body.contains("sync-collection") => (501, String::new()),
        "REPORT" if body.contains("calendar-multiget") => (207, multiget_answer(body)),
        "PROPFIND" if head.contains("Depth: 1") || head.contains("depth: 1") => (
            207,
            r#"<multistatus xmlns="DAV:" xmlns:CS="http://calendarserver.org/ns/">
              <response><href>/cal/</href><propstat><prop><resourcetype><collection/></resourcetype><CS:getctag>c1</CS:getctag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
              <response><href>a.ics</href><propstat><prop><resourcetype/><getetag>"e-a"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
              <response><href>/cal/b%40x.ics</href><propstat><prop><resourcetype/><getetag>"e-b"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response>
            </multistatus>"#
                .to_string(),
        ),
        _ => (500, String::new()),
    })
    .await;
    let result = caldav(&url).sync(&alice(), &format!("{url}cal/"), None, any_window()).await.unwrap();
    assert!(result.full);
    assert!(result.cursor.as_deref().is_some_and(|c| c.starts_with("etags:=c1 * ")), "{:?}", result.cursor);
    assert_eq!(ids(&result), ["upsert /cal/a.ics", "upsert /cal/b@x.ics"]);
}

#[tokio::test]
async fn a_truncated_sync_collection_answer_is_followed_to_its_end() {
    let url = scripted(|method, _, body| match method {
        "REPORT" if body.contains("<D:sync-token/>") => (
            207,
            r#"<D:multistatus xmlns:D="DAV:">
              <D:response><D:href>/cal/a.ics</D:href><D:propstat><D:prop><D:getetag>"1"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
              <D:response><D:href>/cal/</D:href><D:status>HTTP/1.1 507 Insufficient Storage</D:status><D:error><D:number-of-matches-within-limits/></D:error></D:response>
              <D:sync-token>http://example.com/ns/sync/1</D:sync-token>
            </D:multistatus>"#
                .to_string(),
        ),
        "REPORT" if body.contains("<D:sync-token>http://example.com/ns/sync/1</D:sync-token>") => (
            207,
            r#"<D:multistatus xmlns:D="DAV:">
              <D:response><D:href>/cal/b%40x.ics</D:href><D:propstat><D:prop><D:getetag>"2"</D:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
              <D:response><D:href>/cal/gone.ics</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>
              <D:sync-token>http://example.com/ns/sync/2</D:sync-token>
            </D:multistatus>"#
                .to_string(),
        ),
        "REPORT" if body.contains("calendar-multiget") => (207, multiget_answer(body)),
        _ => (500, String::new()),
    })
    .await;
    let result = caldav(&url).sync(&alice(), &format!("{url}cal/"), None, any_window()).await.unwrap();
    assert!(result.full);
    assert_eq!(result.cursor.as_deref(), Some("sync:http://example.com/ns/sync/2"));
    assert_eq!(ids(&result), ["upsert /cal/a.ics", "upsert /cal/b@x.ics"], "a full sync reports no removals");
}
