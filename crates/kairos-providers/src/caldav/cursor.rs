//! The sync cursor, as the opaque string Kairos stores.
//!
//! Two forms:
//! - `sync:<token>` — an RFC 6578 `DAV:sync-token` (a URI, stored as the server wrote it).
//! - `etags:<ctag>[ *[ <member>…]]` — for servers without sync-collection. `<ctag>` is `-` when
//!   the collection has no `CS:getctag`, else `=` followed by the ctag percent-encoded. `*` says
//!   that the member list follows (an empty calendar has an empty list). Each `<member>` is 11
//!   characters of unpadded base64url of the first 8 bytes of SHA-256 of the member's ETag,
//!   followed by the member's name within the collection (a canonical, percent-encoded path
//!   segment, so never a space). The list is left out when it would make the cursor longer
//!   than [`MAX_LEN`]: the next change then costs a full sync.
//!
//! Anything else (a cursor from an older format, or damaged) is reported as expired, which
//! makes the caller sync from scratch.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// The longest cursor written (about 1,300 members at typical name lengths).
pub(crate) const MAX_LEN: usize = 64 * 1024;
/// The longest sync token accepted from a server.
pub(crate) const MAX_TOKEN: usize = 8 * 1024;

const CTAG: &AsciiSet = &CONTROLS.add(b' ').add(b'%');
const HASH_LEN: usize = 11;

/// Member name → ETag digest.
pub(crate) type Members = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    Token(String),
    Etags {
        ctag: Option<String>,
        /// Member name → etag digest; `None` when the list was too long to keep.
        members: Option<Members>,
    },
}

/// The digest of an ETag kept in a cursor.
pub(crate) fn digest(etag: &str) -> String {
    let hash = Sha256::digest(etag.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash[..8])
}

impl Cursor {
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(token) = text.strip_prefix("sync:") {
            return (!token.is_empty()).then(|| Self::Token(token.to_string()));
        }
        let rest = text.strip_prefix("etags:")?;
        let mut parts = rest.split(' ');
        let ctag = match parts.next()? {
            "-" => None,
            tag => Some(percent_decode_str(tag.strip_prefix('=')?).decode_utf8().ok()?.into_owned()),
        };
        let mut members = BTreeMap::new();
        let mut listed = false;
        for part in parts {
            if part == "*" {
                listed = true;
                continue;
            }
            if part.len() <= HASH_LEN || !part.is_char_boundary(HASH_LEN) {
                return None;
            }
            let (hash, name) = part.split_at(HASH_LEN);
            members.insert(name.to_string(), hash.to_string());
        }
        Some(Self::Etags { ctag, members: listed.then_some(members) })
    }

    /// The stored form. The member list is written only when it fits in [`MAX_LEN`]; `*` marks
    /// that it is there (an empty calendar has an empty but known list).
    pub fn encode(&self) -> String {
        match self {
            Self::Token(token) => format!("sync:{token}"),
            Self::Etags { ctag, members } => {
                let mut out = match ctag {
                    None => "etags:-".to_string(),
                    Some(tag) => format!("etags:={}", utf8_percent_encode(tag, CTAG)),
                };
                let head = out.len();
                if let Some(members) = members {
                    out.push_str(" *");
                    for (name, hash) in members {
                        out.push(' ');
                        out.push_str(hash);
                        out.push_str(name);
                        if out.len() > MAX_LEN {
                            out.truncate(head);
                            break;
                        }
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let token = Cursor::Token("http://radicale.org/ns/sync/abc".into());
        assert_eq!(Cursor::parse(&token.encode()), Some(token));
        let members: BTreeMap<String, String> =
            [("a%20b.ics".to_string(), digest("\"1\"")), ("c.ics".to_string(), digest("W/\"2\""))].into();
        for ctag in [None, Some("\"tag with spaces % and ünïcode\"".to_string())] {
            for members in [None, Some(BTreeMap::new()), Some(members.clone())] {
                let cursor = Cursor::Etags { ctag: ctag.clone(), members };
                let text = cursor.encode();
                assert_eq!(Cursor::parse(&text), Some(cursor), "{text}");
            }
        }
    }

    #[test]
    fn a_member_list_too_long_to_keep_is_dropped_not_cut() {
        let members: BTreeMap<String, String> =
            (0..10_000).map(|i| (format!("event-{i:05}.ics"), digest("x"))).collect();
        let text = Cursor::Etags { ctag: Some("c".into()), members: Some(members) }.encode();
        assert!(text.len() <= MAX_LEN);
        assert_eq!(Cursor::parse(&text), Some(Cursor::Etags { ctag: Some("c".into()), members: None }));
    }

    #[test]
    fn foreign_or_damaged_cursors_are_not_read() {
        for text in ["", "sync:", "http://radicale.org/ns/sync/abc", "etags:", "etags:x", "etags:- * short"] {
            assert_eq!(Cursor::parse(text), None, "{text}");
        }
    }
}
