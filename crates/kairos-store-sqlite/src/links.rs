//! Booking links: their pages are public, so a slug is unique across tenants and a page finds
//! its tenant through it.

use kairos_core::Link;
use kairos_store::{Mode, Page, PageRequest, StoreError, StoreResult, Tenant};
use rusqlite::{Connection, OptionalExtension, params};

use crate::db::{error, unique};
use crate::rows::{corrupt, json, ms, ts};

const COLUMNS: &str =
    "id, slug, title, business_id, participants, duration_minutes, created_at, updated_at, account_id, mode";

type Row = (Link, String, String);
/// The columns as read, before checking.
type Raw = (String, String, String, Option<String>, String, i64, i64, i64, String, String);

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?))
}

fn finish(
    (id, slug, title, business_id, participants, duration, created, updated, account_id, mode): Raw,
) -> StoreResult<Row> {
    let link = Link {
        id,
        slug,
        title,
        business_id,
        participants: serde_json::from_str(&participants).map_err(|e| corrupt("link participants", e))?,
        duration_minutes: u32::try_from(duration).map_err(|e| corrupt("link duration", e))?,
        created_at: ts(created)?,
        updated_at: ts(updated)?,
    };
    Ok((link, account_id, mode))
}

pub(crate) fn insert(c: &Connection, t: &Tenant, l: &Link) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO links (id, account_id, mode, slug, title, business_id, participants, duration_minutes, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            l.id,
            t.account_id,
            t.mode.as_str(),
            l.slug,
            l.title,
            l.business_id,
            json(&l.participants),
            i64::from(l.duration_minutes),
            ms(l.created_at),
            ms(l.updated_at)
        ])
    })
    .map_err(unique("slug"))?;
    Ok(())
}

pub(crate) fn get(c: &Connection, t: &Tenant, id: &str) -> StoreResult<Option<Link>> {
    let row = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM links WHERE id = ?1 AND account_id = ?2 AND mode = ?3"))
        .and_then(|mut s| s.query_row(params![id, t.account_id, t.mode.as_str()], read).optional())
        .map_err(error)?;
    row.map(|r| finish(r).map(|(l, _, _)| l)).transpose()
}

pub(crate) fn list(c: &Connection, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Link>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM links WHERE account_id = ?1 AND mode = ?2 AND (?3 IS NULL OR id < ?3)
              ORDER BY id DESC LIMIT ?4"
        ))
        .and_then(|mut s| {
            s.query_map(params![t.account_id, t.mode.as_str(), page.cursor, page.limit as i64 + 1], read)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    let links = rows.into_iter().map(|r| finish(r).map(|(l, _, _)| l)).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(links, page.limit, |l| &l.id))
}

pub(crate) fn update(c: &Connection, t: &Tenant, l: &Link) -> StoreResult<()> {
    let n = c
        .prepare_cached(
            "UPDATE links SET slug = ?1, title = ?2, business_id = ?3, participants = ?4, duration_minutes = ?5,
                    updated_at = ?6
              WHERE id = ?7 AND account_id = ?8 AND mode = ?9",
        )
        .and_then(|mut s| {
            s.execute(params![
                l.slug,
                l.title,
                l.business_id,
                json(&l.participants),
                i64::from(l.duration_minutes),
                ms(l.updated_at),
                l.id,
                t.account_id,
                t.mode.as_str()
            ])
        })
        .map_err(unique("slug"))?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) fn delete(c: &Connection, t: &Tenant, id: &str) -> StoreResult<bool> {
    let n = c
        .prepare_cached("DELETE FROM links WHERE id = ?1 AND account_id = ?2 AND mode = ?3")
        .and_then(|mut s| s.execute(params![id, t.account_id, t.mode.as_str()]))
        .map_err(error)?;
    Ok(n > 0)
}

pub(crate) fn by_slug(c: &Connection, slug: &str) -> StoreResult<Option<(Tenant, Link)>> {
    let row = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM links WHERE slug = ?1"))
        .and_then(|mut s| s.query_row([slug], read).optional())
        .map_err(error)?;
    row.map(|r| {
        let (link, account_id, mode) = finish(r)?;
        let mode = Mode::parse(&mode).ok_or_else(|| corrupt("mode", &mode))?;
        Ok((Tenant { account_id, mode }, link))
    })
    .transpose()
}
