//! WebDAV XML: a namespace-resolved element tree read with quick-xml's `NsReader` (servers pick
//! any prefixes, or none, and may declare namespaces anywhere), the multistatus answer
//! (RFC 4918 §14.16) read from it, and the request bodies this adapter sends.

use quick_xml::NsReader;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

pub(crate) const DAV: &str = "DAV:";
pub(crate) const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
pub(crate) const CALSERVER: &str = "http://calendarserver.org/ns/";

/// Deeper nesting than this is refused: no WebDAV answer comes close, and a tree built from a
/// hostile one would be dropped recursively.
const MAX_DEPTH: usize = 64;

/// An XML element with its namespace resolved. Mixed content is not needed by WebDAV: the
/// element's own text segments are concatenated in `text`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    /// The namespace URI (`""` when unbound).
    pub ns: String,
    pub name: String,
    /// Attributes other than namespace declarations, by local name.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    pub fn children_named<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The text of the first `DAV:href` child, trimmed.
    pub fn href(&self) -> Option<String> {
        self.child(DAV, "href").map(|h| h.text.trim().to_string()).filter(|h| !h.is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct XmlError(String);

fn start(reader_ns: ResolveResult<'_>, e: &BytesStart<'_>) -> Result<Element, XmlError> {
    let ns = match reader_ns {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        ResolveResult::Unbound | ResolveResult::Unknown(_) => String::new(),
    };
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|e| XmlError(e.to_string()))?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let value = attr.unescape_value().map_err(|e| XmlError(e.to_string()))?;
        attrs.push((String::from_utf8_lossy(key.local_name().as_ref()).into_owned(), value.into_owned()));
    }
    Ok(Element { ns, name, attrs, children: Vec::new(), text: String::new() })
}

/// Parses a whole document into its root element.
pub(crate) fn parse(text: &str) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let err = |e: quick_xml::Error| XmlError(e.to_string());
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(err)?;
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError(format!("elements nest deeper than {MAX_DEPTH} levels")));
                }
                stack.push(start(ns, &e)?);
            }
            Event::Empty(e) => {
                let element = start(ns, &e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else { return Err(XmlError("an end tag without a start".into())) };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Text(t) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&t.xml_content().map_err(|e| XmlError(e.to_string()))?);
                }
            }
            Event::CData(t) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&t.decode().map_err(|e| XmlError(e.to_string()))?);
                }
            }
            Event::GeneralRef(r) => {
                let Some(current) = stack.last_mut() else { continue };
                if let Some(c) = r.resolve_char_ref().map_err(err)? {
                    current.text.push(c);
                } else {
                    let name = r.decode().map_err(|e| XmlError(e.to_string()))?;
                    // Only XML's five predefined entities exist without a DTD, and a DTD's
                    // entities are never expanded (no entity-expansion attacks).
                    let Some(value) = resolve_predefined_entity(&name) else {
                        return Err(XmlError(format!("unknown entity &{name};")));
                    };
                    current.text.push_str(value);
                }
            }
            Event::Eof => return Err(XmlError("the document ends before its root element closes".into())),
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) | Event::Comment(_) => {}
        }
    }
}

/// One `DAV:response` of a multistatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The raw `DAV:href` (relative or absolute, percent-encoded as the server wrote it).
    pub href: String,
    /// The response-level `DAV:status` (a removed member's 404, a truncation's 507).
    pub status: Option<u16>,
    /// Each `DAV:propstat`: its status and its `DAV:prop` element.
    pub propstats: Vec<(u16, Element)>,
}

impl Response {
    /// A property the server returned with 200.
    pub fn prop(&self, ns: &str, name: &str) -> Option<&Element> {
        self.propstats.iter().filter(|(status, _)| *status == 200).find_map(|(_, prop)| prop.child(ns, name))
    }

    /// A property's text, trimmed; `None` when absent or empty.
    pub fn text(&self, ns: &str, name: &str) -> Option<String> {
        self.prop(ns, name).map(|p| p.text.trim().to_string()).filter(|t| !t.is_empty())
    }
}

/// A `DAV:multistatus` answer (RFC 4918 §13), with RFC 6578's top-level `DAV:sync-token`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Multistatus {
    pub responses: Vec<Response>,
    pub sync_token: Option<String>,
}

/// `HTTP/1.1 404 Not Found` → 404.
fn status_code(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1).and_then(|code| code.parse().ok())
}

pub(crate) fn multistatus(text: &str) -> Result<Multistatus, XmlError> {
    let root = parse(text)?;
    if !root.is(DAV, "multistatus") {
        return Err(XmlError(format!("expected DAV:multistatus, found {{{}}}{}", root.ns, root.name)));
    }
    let mut out = Multistatus {
        sync_token: root.child(DAV, "sync-token").map(|t| t.text.trim().to_string()).filter(|t| !t.is_empty()),
        responses: Vec::new(),
    };
    for response in root.children_named(DAV, "response") {
        let status = response.child(DAV, "status").and_then(|s| status_code(&s.text));
        let propstats = response
            .children_named(DAV, "propstat")
            .filter_map(|ps| {
                // A propstat without a status is read as 200, as the common clients do.
                let status = ps.child(DAV, "status").map_or(Some(200), |s| status_code(&s.text))?;
                Some((status, ps.child(DAV, "prop")?.clone()))
            })
            .collect();
        // RFC 4918 allows several hrefs in a response that carries a status only: each is one
        // resource with that status.
        let hrefs: Vec<String> =
            response.children_named(DAV, "href").map(|h| h.text.trim().to_string()).filter(|h| !h.is_empty()).collect();
        for href in hrefs {
            out.responses.push(Response { href, status, propstats: Vec::clone(&propstats) });
        }
    }
    Ok(out)
}

/// Whether an error body (`DAV:error`, RFC 4918 §16) names precondition `ns`:`name`, and the
/// hrefs inside it (CalDAV's `no-uid-conflict` carries the conflicting resource's href).
pub(crate) fn precondition(text: &str, ns: &str, name: &str) -> Option<Vec<String>> {
    let root = parse(text).ok()?;
    if !root.is(DAV, "error") {
        return None;
    }
    root.child(ns, name).map(|c| c.children_named(DAV, "href").map(|h| h.text.trim().to_string()).collect())
}

/// The text of a `DAV:prop` child in the request bodies below: `<D:getetag/>`.
pub(crate) struct Prop(pub &'static str);

pub(crate) const GETETAG: Prop = Prop("<D:getetag/>");
pub(crate) const RESOURCETYPE: Prop = Prop("<D:resourcetype/>");
pub(crate) const DISPLAYNAME: Prop = Prop("<D:displayname/>");
pub(crate) const CTAG: Prop = Prop("<CS:getctag/>");
pub(crate) const SYNC_TOKEN: Prop = Prop("<D:sync-token/>");
pub(crate) const PRIVILEGES: Prop = Prop("<D:current-user-privilege-set/>");
pub(crate) const COMPONENTS: Prop = Prop("<C:supported-calendar-component-set/>");
pub(crate) const TIMEZONE: Prop = Prop("<C:calendar-timezone/>");
/// RFC 7809's bare zone id, where the server has it.
pub(crate) const TIMEZONE_ID: Prop = Prop("<C:calendar-timezone-id/>");
pub(crate) const PRINCIPAL: Prop = Prop("<D:current-user-principal/>");
pub(crate) const HOME_SET: Prop = Prop("<C:calendar-home-set/>");

const NAMESPACES: &str =
    r#"xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/""#;

fn props(props: &[Prop]) -> String {
    props.iter().map(|p| p.0).collect()
}

/// A PROPFIND for `props`.
pub(crate) fn propfind(wanted: &[Prop]) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><D:propfind {NAMESPACES}><D:prop>{}</D:prop></D:propfind>"#,
        props(wanted)
    )
}

/// RFC 6578 §3.2: an empty `sync-token` element asks for everything.
pub(crate) fn sync_collection(token: &str) -> String {
    let token = if token.is_empty() {
        "<D:sync-token/>".to_string()
    } else {
        format!("<D:sync-token>{}</D:sync-token>", escape(token))
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><D:sync-collection {NAMESPACES}>{token}<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"#
    )
}

/// RFC 4791 §7.9: the named resources' etags and data.
pub(crate) fn calendar_multiget<'a>(hrefs: impl IntoIterator<Item = &'a str>) -> String {
    let hrefs: String = hrefs.into_iter().map(|h| format!("<D:href>{}</D:href>", escape(h))).collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget {NAMESPACES}><D:prop><D:getetag/><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>"#
    )
}

/// RFC 4791 §7.8 / §9.9: the VEVENT resources that overlap `[start, end)` (UTC, `…Z`).
pub(crate) fn calendar_query_time_range(start: &str, end: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><C:calendar-query {NAMESPACES}><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"#
    )
}

/// RFC 4791 §9.7.5: the resource whose VEVENT has this UID.
pub(crate) fn calendar_query_uid(uid: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><C:calendar-query {NAMESPACES}><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:prop-filter name="UID"><C:text-match collation="i;octet">{}</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"#,
        escape(uid)
    )
}

#[cfg(test)]
#[path = "xml_tests.rs"]
mod tests;
