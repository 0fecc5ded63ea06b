//! Multistatus bodies as servers send them: Radicale 3.9's (captured from a real server,
//! default namespace, no whitespace), RFC 6578 §3.8 and §3.10's examples (absolute URLs,
//! a line break inside a tag, truncation), RFC 4791 §7.8-style calendar-query answers, and
//! sabre/dav-style prefixes (Nextcloud, Baïkal) with CDATA and character references.

use super::*;

const RADICALE_HOME: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/" xmlns:ICAL="http://apple.com/ns/ical/"><response><href>/alice/</href><propstat><prop><resourcetype><principal /><collection /></resourcetype><current-user-privilege-set><privilege><read /></privilege><privilege><all /></privilege></current-user-privilege-set></prop><status>HTTP/1.1 200 OK</status></propstat><propstat><prop><displayname /><CS:getctag /><sync-token /><C:supported-calendar-component-set /></prop><status>HTTP/1.1 404 Not Found</status></propstat></response><response><href>/alice/tasks/</href><propstat><prop><resourcetype><C:calendar /><collection /></resourcetype><displayname>Tasks</displayname><CS:getctag>"e8253faa45e08388c196d20b303665a885a1d78b6f0dcfd2cf9772841f882c3e"</CS:getctag><sync-token>http://radicale.org/ns/sync/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855</sync-token><C:supported-calendar-component-set><C:comp name="VTODO" /></C:supported-calendar-component-set></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>/alice/work/</href><propstat><prop><resourcetype><C:calendar /><collection /></resourcetype><displayname>alice/work</displayname><CS:getctag>"ca5d66c5"</CS:getctag><current-user-privilege-set><privilege><read /></privilege><privilege><C:read-free-busy /></privilege><privilege><write /></privilege></current-user-privilege-set><C:supported-calendar-component-set><C:comp name="VTODO" /><C:comp name="VEVENT" /><C:comp name="VJOURNAL" /></C:supported-calendar-component-set></prop><status>HTTP/1.1 200 OK</status></propstat><propstat><prop><C:calendar-timezone /></prop><status>HTTP/1.1 404 Not Found</status></propstat></response></multistatus>"#;

#[test]
fn radicales_home_listing_reads_with_its_default_namespace() {
    let ms = multistatus(RADICALE_HOME).unwrap();
    assert_eq!(ms.responses.len(), 3);
    let home = &ms.responses[0];
    assert_eq!(home.href, "/alice/");
    assert!(home.prop(DAV, "resourcetype").unwrap().child(DAV, "principal").is_some());
    assert_eq!(home.prop(DAV, "displayname"), None, "a 404 propstat is not a value");
    let tasks = &ms.responses[1];
    let comps: Vec<&str> = tasks
        .prop(CALDAV, "supported-calendar-component-set")
        .unwrap()
        .children_named(CALDAV, "comp")
        .filter_map(|c| c.attr("name"))
        .collect();
    assert_eq!(comps, ["VTODO"]);
    let work = &ms.responses[2];
    assert!(work.prop(DAV, "resourcetype").unwrap().child(CALDAV, "calendar").is_some());
    assert_eq!(work.text(CALSERVER, "getctag").as_deref(), Some("\"ca5d66c5\""));
    assert_eq!(work.text(DAV, "displayname").as_deref(), Some("alice/work"));
}

const RADICALE_SYNC: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:"><sync-token>http://radicale.org/ns/sync/bd95d115c8675a27071105c826e0bbe7d0f51e426f3e1fc6156bd73fb3fe5e63</sync-token><response><href>/alice/work/one%20x.ics</href><status>HTTP/1.1 404 Not Found</status></response><response><href>/alice/work/one.ics</href><propstat><prop><getetag>"fab09dc1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;

#[test]
fn radicales_sync_answer_has_the_token_a_removal_and_a_change() {
    let ms = multistatus(RADICALE_SYNC).unwrap();
    assert_eq!(
        ms.sync_token.as_deref(),
        Some("http://radicale.org/ns/sync/bd95d115c8675a27071105c826e0bbe7d0f51e426f3e1fc6156bd73fb3fe5e63")
    );
    assert_eq!(ms.responses[0].href, "/alice/work/one%20x.ics");
    assert_eq!(ms.responses[0].status, Some(404));
    assert_eq!(ms.responses[1].status, None);
    assert_eq!(ms.responses[1].text(DAV, "getetag").as_deref(), Some("\"fab09dc1\""));
}

#[test]
fn radicales_error_bodies_name_their_preconditions() {
    let invalid = "<?xml version='1.0' encoding='utf-8'?>\n<error xmlns=\"DAV:\"><valid-sync-token /></error>";
    assert_eq!(precondition(invalid, DAV, "valid-sync-token"), Some(vec![]));
    assert_eq!(precondition(invalid, DAV, "supported-report"), None);
    let uid = "<?xml version='1.0' encoding='utf-8'?>\n<error xmlns=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:no-uid-conflict /></error>";
    assert_eq!(precondition(uid, CALDAV, "no-uid-conflict"), Some(vec![]));
    // RFC 4791 §5.3.2.1: the conflicting resource's href, where the server gives it.
    let with_href = r#"<D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><C:no-uid-conflict><D:href>/home/a/cal/x.ics</D:href></C:no-uid-conflict></D:error>"#;
    assert_eq!(precondition(with_href, CALDAV, "no-uid-conflict"), Some(vec!["/home/a/cal/x.ics".to_string()]));
    assert_eq!(precondition("not xml <", DAV, "valid-sync-token"), None);
}

/// RFC 6578 §3.8's initial sync answer (abridged): absolute URLs, a second propstat with 404,
/// a property in a namespace declared on the element itself, a tag broken across lines.
const RFC6578_INITIAL: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
   <D:multistatus xmlns:D="DAV:">
     <D:response>
       <D:href
   >http://webdav.example.com/home/cyrus/test.doc</D:href>
       <D:propstat>
         <D:prop>
           <D:getetag>"00001-abcd1"</D:getetag>
           <R:bigbox xmlns:R="urn:ns.example.com:boxschema">
             <R:BoxType>Box type A</R:BoxType>
           </R:bigbox>
         </D:prop>
         <D:status>HTTP/1.1 200 OK</D:status>
       </D:propstat>
     </D:response>
     <D:response>
       <D:href
   >http://webdav.example.com/home/cyrus/vcard.vcf</D:href>
       <D:propstat>
         <D:prop>
           <D:getetag>"00002-abcd1"</D:getetag>
         </D:prop>
         <D:status>HTTP/1.1 200 OK</D:status>
       </D:propstat>
       <D:propstat>
         <D:prop>
           <R:bigbox xmlns:R="urn:ns.example.com:boxschema"/>
         </D:prop>
         <D:status>HTTP/1.1 404 Not Found</D:status>
       </D:propstat>
     </D:response>
     <D:sync-token>http://example.com/ns/sync/1234</D:sync-token>
   </D:multistatus>"#;

#[test]
fn the_rfc_6578_initial_example_reads() {
    let ms = multistatus(RFC6578_INITIAL).unwrap();
    assert_eq!(ms.sync_token.as_deref(), Some("http://example.com/ns/sync/1234"));
    let hrefs: Vec<&str> = ms.responses.iter().map(|r| r.href.as_str()).collect();
    assert_eq!(
        hrefs,
        ["http://webdav.example.com/home/cyrus/test.doc", "http://webdav.example.com/home/cyrus/vcard.vcf"]
    );
    let bigbox = ms.responses[0].prop("urn:ns.example.com:boxschema", "bigbox").unwrap();
    assert_eq!(bigbox.child("urn:ns.example.com:boxschema", "BoxType").unwrap().text, "Box type A");
    assert_eq!(ms.responses[1].text(DAV, "getetag").as_deref(), Some("\"00002-abcd1\""));
    assert_eq!(ms.responses[1].prop("urn:ns.example.com:boxschema", "bigbox"), None);
}

/// RFC 6578 §3.10: a truncated answer marks the collection itself with 507.
const RFC6578_TRUNCATED: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
   <D:multistatus xmlns:D="DAV:">
     <D:response>
       <D:href>http://webdav.example.com/home/cyrus/test.doc</D:href>
       <D:propstat>
         <D:prop><D:getetag>"00001-abcd1"</D:getetag></D:prop>
         <D:status>HTTP/1.1 200 OK</D:status>
       </D:propstat>
     </D:response>
     <D:response>
       <D:href>http://webdav.example.com/home/cyrus/removed.txt</D:href>
       <D:status>HTTP/1.1 404 Not Found</D:status>
     </D:response>
     <D:response>
       <D:href>http://webdav.example.com/home/cyrus/</D:href>
       <D:status>HTTP/1.1 507 Insufficient Storage</D:status>
       <D:error><D:number-of-matches-within-limits/></D:error>
     </D:response>
     <D:sync-token>http://example.com/ns/sync/1233</D:sync-token>
   </D:multistatus>"#;

#[test]
fn the_rfc_6578_truncated_example_marks_the_collection_507() {
    let ms = multistatus(RFC6578_TRUNCATED).unwrap();
    let statuses: Vec<(&str, Option<u16>)> = ms.responses.iter().map(|r| (r.href.as_str(), r.status)).collect();
    assert_eq!(
        statuses,
        [
            ("http://webdav.example.com/home/cyrus/test.doc", None),
            ("http://webdav.example.com/home/cyrus/removed.txt", Some(404)),
            ("http://webdav.example.com/home/cyrus/", Some(507)),
        ]
    );
}

/// An RFC 4791 §7.8-style calendar-query answer: absolute URLs, calendar data with a
/// VTIMEZONE and a recurring VEVENT, escaped as XML text.
const RFC4791_QUERY: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
   <D:multistatus xmlns:D="DAV:"
              xmlns:C="urn:ietf:params:xml:ns:caldav">
     <D:response>
       <D:href>http://cal.example.com/bernard/work/abcd2.ics</D:href>
       <D:propstat>
         <D:prop>
           <D:getetag>"fffff-abcd2"</D:getetag>
           <C:calendar-data>BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VTIMEZONE
TZID:US/Eastern
BEGIN:STANDARD
DTSTART:19671029T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZNAME:EST
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
DTSTART;TZID=US/Eastern:20060102T120000
DURATION:PT1H
RRULE:FREQ=DAILY;COUNT=5
SUMMARY:Event #2 &amp; more
UID:00959BC664CA650E933C892C@example.com
END:VEVENT
END:VCALENDAR
</C:calendar-data>
         </D:prop>
         <D:status>HTTP/1.1 200 OK</D:status>
       </D:propstat>
     </D:response>
   </D:multistatus>"#;

#[test]
fn the_rfc_4791_query_example_yields_its_calendar_data() {
    let ms = multistatus(RFC4791_QUERY).unwrap();
    let response = &ms.responses[0];
    assert_eq!(response.href, "http://cal.example.com/bernard/work/abcd2.ics");
    let data = &response.prop(CALDAV, "calendar-data").unwrap().text;
    assert!(data.starts_with("BEGIN:VCALENDAR\n") && data.ends_with("END:VCALENDAR\n"), "{data}");
    assert!(data.contains("SUMMARY:Event #2 & more\n"));
}

/// sabre/dav-style prefixes (`d:`, `cal:`, `cs:`), a CDATA section with CRLF written as
/// `&#13;` around it, and a relative href with percent-encoding.
const SABRE_MULTIGET: &str = "<?xml version=\"1.0\"?>\n<d:multistatus xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\" xmlns:cal=\"urn:ietf:params:xml:ns:caldav\" xmlns:cs=\"http://calendarserver.org/ns/\" xmlns:oc=\"http://owncloud.org/ns\" xmlns:nc=\"http://nextcloud.org/ns\">\
<d:response><d:href>/remote.php/dav/calendars/admin/personal/caf%C3%A9%40noon.ics</d:href><d:propstat><d:prop>\
<d:getetag>&quot;6e1f4b2c&quot;</d:getetag>\
<cal:calendar-data>BEGIN:VCALENDAR&#13;\nBEGIN:VEVENT&#13;\n<![CDATA[UID:cafe<1>&2]]>&#13;\nEND:VEVENT&#13;\nEND:VCALENDAR&#13;\n</cal:calendar-data>\
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>\
<d:response><d:href>/remote.php/dav/calendars/admin/personal/gone.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>\
</d:multistatus>";

#[test]
fn sabre_prefixes_cdata_and_character_references_read() {
    let ms = multistatus(SABRE_MULTIGET).unwrap();
    let found = &ms.responses[0];
    assert_eq!(found.href, "/remote.php/dav/calendars/admin/personal/caf%C3%A9%40noon.ics");
    assert_eq!(found.text(DAV, "getetag").as_deref(), Some("\"6e1f4b2c\""));
    assert_eq!(
        found.prop(CALDAV, "calendar-data").unwrap().text,
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:cafe<1>&2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    assert_eq!(ms.responses[1].status, Some(404));
}

#[test]
fn one_prefix_can_name_different_namespaces_in_different_scopes() {
    let text = r#"<x:multistatus xmlns:x="DAV:"><x:response><x:href>/a/</x:href><x:propstat><x:prop xmlns:y="urn:ietf:params:xml:ns:caldav"><x:resourcetype><x:collection/><y:calendar/></x:resourcetype><x:displayname xmlns:x="urn:other">not DAV</x:displayname></x:prop><x:status>HTTP/1.1 200 OK</x:status></x:propstat></x:response></x:multistatus>"#;
    let ms = multistatus(text).unwrap();
    let r = &ms.responses[0];
    assert!(r.prop(DAV, "resourcetype").unwrap().child(CALDAV, "calendar").is_some());
    assert_eq!(r.prop(DAV, "displayname"), None);
    assert_eq!(r.prop("urn:other", "displayname").unwrap().text, "not DAV");
}

#[test]
fn hostile_or_broken_documents_are_refused() {
    assert!(multistatus("<html><body>Not WebDAV</body></html>").is_err());
    assert!(multistatus("<D:multistatus xmlns:D=\"DAV:\"><D:response>").is_err());
    assert!(multistatus("").is_err());
    let deep = format!("<a>{}</a>", "<b>".repeat(100));
    assert!(parse(&deep).is_err());
    let entity = "<!DOCTYPE d [<!ENTITY x \"boom\">]><D:multistatus xmlns:D=\"DAV:\">&x;</D:multistatus>";
    assert!(multistatus(entity).is_err(), "DTD entities are never expanded");
}

#[test]
fn request_bodies_escape_what_they_carry() {
    assert!(sync_collection("").contains("<D:sync-token/>"));
    assert!(
        sync_collection("http://x/sync?a=1&b=2").contains("<D:sync-token>http://x/sync?a=1&amp;b=2</D:sync-token>")
    );
    assert!(calendar_multiget(["/c/a&b.ics"]).contains("<D:href>/c/a&amp;b.ics</D:href>"));
    assert!(calendar_query_uid("x<y").contains(">x&lt;y</C:text-match>"));
    for body in [
        propfind(&[GETETAG, CTAG]),
        sync_collection("t"),
        calendar_query_time_range("20270101T000000Z", "20270102T000000Z"),
    ] {
        parse(&body).unwrap();
    }
}
