//! Syncing one calendar collection: RFC 6578 sync-collection where the server has it, else the
//! collection's ctag and a listing of its members' ETags compared with the cursor's. Either
//! way the changed members' data comes from calendar-multiget, in batches.

use std::collections::BTreeMap;

use url::Url;

use super::cursor::{self, Cursor, Members};
use super::http::{Dav, canonical_path, resolve};
use super::item::item;
use super::xml::{self, CALDAV, CALSERVER, DAV};
use crate::{Change, ProviderError, ProviderResult, SyncResult};

/// Members asked for per calendar-multiget.
const BATCH: usize = 100;
/// Truncated sync-collection answers followed (RFC 6578 §3.6) before giving up.
const MAX_ROUNDS: usize = 1000;

/// What a listing says about one member.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Changed(Option<String>),
    Removed,
}

pub(crate) async fn sync(
    dav: &Dav<'_>,
    collection: &Url,
    cursor: Option<&str>,
    use_sync_collection: bool,
) -> ProviderResult<SyncResult> {
    let previous = match cursor {
        None => None,
        Some(text) => Some(Cursor::parse(text).ok_or(ProviderError::CursorExpired)?),
    };
    match previous {
        None => {
            if use_sync_collection {
                if let Some(result) = by_token(dav, collection, "").await? {
                    return Ok(result);
                }
                tracing::info!(%collection, "no sync-collection report here: syncing by ctag and etags");
            }
            by_etags(dav, collection, None).await
        }
        // A server that stopped supporting the report: start over, which falls back.
        Some(Cursor::Token(token)) => by_token(dav, collection, &token).await?.ok_or(ProviderError::CursorExpired),
        Some(Cursor::Etags { ctag, members }) => by_etags(dav, collection, Some((ctag, members))).await,
    }
}

/// The member path of a response, or `None` for the collection itself, sub-collections and
/// anything outside it.
fn member(base: &Url, collection_path: &str, href: &str) -> Option<String> {
    let path = canonical_path(&resolve(base, href)?);
    let name = path.strip_prefix(collection_path)?;
    (!name.is_empty() && !name.contains('/')).then_some(path)
}

/// RFC 6578 sync from `token` (empty for everything). `None` when the server has no such
/// report.
async fn by_token(dav: &Dav<'_>, collection: &Url, token: &str) -> ProviderResult<Option<SyncResult>> {
    let full = token.is_empty();
    let collection_path = canonical_path(collection);
    let mut token = token.to_string();
    let mut listed: BTreeMap<String, State> = BTreeMap::new();
    let mut rounds = 0;
    loop {
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(ProviderError::Protocol(format!("{collection}: sync-collection truncated {MAX_ROUNDS} times")));
        }
        // RFC 6578 §3.3: Depth 0; the sync-level says how deep.
        let reply = dav.read("REPORT", collection, Some("0"), &xml::sync_collection(&token)).await?;
        match reply.status {
            207 => {}
            403 | 409 if reply.precondition(DAV, "valid-sync-token").is_some() => {
                return if full {
                    Err(ProviderError::Protocol(format!("{collection} refused an empty sync token")))
                } else {
                    Err(ProviderError::CursorExpired)
                };
            }
            400 | 405 | 415 | 501 => return Ok(None),
            403 if reply.precondition(DAV, "supported-report").is_some() => return Ok(None),
            _ => return Err(super::http::failure(&reply)),
        }
        let answer = reply.multistatus()?;
        let Some(next) = answer.sync_token.filter(|t| t.len() <= cursor::MAX_TOKEN) else {
            return Err(ProviderError::Protocol(format!(
                "{collection} answered sync-collection without a usable sync-token"
            )));
        };
        let mut truncated = false;
        for response in &answer.responses {
            let Some(path) = member(&reply.url, &collection_path, &response.href) else {
                truncated |= response.status == Some(507);
                continue;
            };
            let state = match response.status {
                Some(404) => State::Removed,
                Some(status) if status != 200 => continue,
                _ => State::Changed(response.text(DAV, "getetag")),
            };
            listed.insert(path, state);
        }
        token = next;
        if !truncated {
            break;
        }
    }
    let changed: Vec<String> =
        listed.iter().filter(|(_, s)| matches!(s, State::Changed(_))).map(|(path, _)| path.clone()).collect();
    let mut changes = fetch(dav, collection, &changed, full).await?;
    if !full {
        changes.extend(listed.into_iter().filter(|(_, s)| *s == State::Removed).map(|(id, _)| Change::Removed { id }));
    }
    Ok(Some(SyncResult { full, changes, cursor: Some(Cursor::Token(token).encode()) }))
}

/// Sync by ctag and ETags. `previous` is the last cursor's ctag and member digests.
async fn by_etags(
    dav: &Dav<'_>,
    collection: &Url,
    previous: Option<(Option<String>, Option<Members>)>,
) -> ProviderResult<SyncResult> {
    let collection_path = canonical_path(collection);
    if let Some((Some(old), members)) = &previous {
        let (url, answer) = dav.propfind(collection, "0", &[xml::CTAG]).await?;
        let own = answer
            .responses
            .iter()
            .find(|r| resolve(&url, &r.href).is_some_and(|u| canonical_path(&u) == collection_path))
            .or(answer.responses.first());
        if own.and_then(|r| r.text(CALSERVER, "getctag")).as_ref() == Some(old) {
            let cursor = Cursor::Etags { ctag: Some(old.clone()), members: members.clone() };
            return Ok(SyncResult { full: false, changes: Vec::new(), cursor: Some(cursor.encode()) });
        }
    }
    let (url, answer) = dav.propfind(collection, "1", &[xml::RESOURCETYPE, xml::GETETAG, xml::CTAG]).await?;
    let mut ctag = None;
    let mut now: BTreeMap<String, (String, String)> = BTreeMap::new();
    for response in &answer.responses {
        let Some(path) = member(&url, &collection_path, &response.href) else {
            if resolve(&url, &response.href).is_some_and(|u| canonical_path(&u) == collection_path) {
                ctag = response.text(CALSERVER, "getctag");
            }
            continue;
        };
        let is_collection = response.prop(DAV, "resourcetype").is_some_and(|t| t.child(DAV, "collection").is_some());
        let Some(etag) = response.text(DAV, "getetag") else { continue };
        if !is_collection {
            let name = path[collection_path.len()..].to_string();
            now.insert(name, (path, etag));
        }
    }
    let digests: Members = now.iter().map(|(name, (_, etag))| (name.clone(), cursor::digest(etag))).collect();
    let cursor = Some(Cursor::Etags { ctag, members: Some(digests.clone()) }.encode());
    let Some((_, Some(old))) = previous else {
        let all: Vec<String> = now.into_values().map(|(path, _)| path).collect();
        return Ok(SyncResult { full: true, changes: fetch(dav, collection, &all, true).await?, cursor });
    };
    let changed: Vec<String> = now
        .iter()
        .filter(|(name, _)| old.get(*name) != digests.get(*name))
        .map(|(_, (path, _))| path.clone())
        .collect();
    let mut changes = fetch(dav, collection, &changed, false).await?;
    changes.extend(
        old.keys()
            .filter(|name| !now.contains_key(*name))
            .map(|name| Change::Removed { id: format!("{collection_path}{name}") }),
    );
    Ok(SyncResult { full: false, changes, cursor })
}

/// The data of `paths` by calendar-multiget. A member gone meanwhile, or no longer an event,
/// is reported removed in an incremental sync and left out of a full one.
pub(crate) async fn fetch(
    dav: &Dav<'_>,
    collection: &Url,
    paths: &[String],
    full: bool,
) -> ProviderResult<Vec<Change>> {
    let collection_path = canonical_path(collection);
    let mut changes = Vec::with_capacity(paths.len());
    for batch in paths.chunks(BATCH) {
        // RFC 4791 §7.9: no Depth header on a multiget.
        let reply =
            dav.read("REPORT", collection, None, &xml::calendar_multiget(batch.iter().map(String::as_str))).await?;
        let answer = reply.multistatus()?;
        let mut answered = 0;
        for response in &answer.responses {
            let Some(path) = member(&reply.url, &collection_path, &response.href) else { continue };
            if !batch.contains(&path) {
                continue;
            }
            answered += 1;
            let data = response.prop(CALDAV, "calendar-data").map(|d| d.text.as_str());
            match (response.status, data) {
                (Some(404), _) | (_, None) => {
                    if !full {
                        changes.push(Change::Removed { id: path });
                    }
                }
                (_, Some(data)) => match item(&path, response.text(DAV, "getetag"), data) {
                    Some(item) => changes.push(Change::Upsert(item)),
                    None if !full => changes.push(Change::Removed { id: path }),
                    None => {}
                },
            }
        }
        if answered < batch.len() {
            tracing::warn!(%collection, asked = batch.len(), answered, "calendar-multiget left members out");
        }
    }
    Ok(changes)
}
