//! Calendar connections, their calendars (with the text last synced) and the busy time each
//! selected calendar holds (rows of `busy_blocks` whose source is the calendar's id).

use jiff::Timestamp;
use kairos_core::Interval;
use kairos_store::{
    CalendarConnection, CalendarRecord, NewBusyBlock, StoreError, StoreResult, SyncOutcome, SyncRecord, Tenant,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::db::{error, unique};
use crate::directory::add_busy_blocks;
use crate::rows::{ms, ts};

pub(crate) const CONNECTION_COLUMNS: &str = "id, user_id, provider, url, status, etag, last_modified, last_sync, last_error, \
     next_sync_at, created_at, updated_at";

pub(crate) fn read_connection(r: &Row<'_>) -> rusqlite::Result<CalendarConnectionRow> {
    Ok(CalendarConnectionRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        provider: r.get(2)?,
        url: r.get(3)?,
        status: r.get(4)?,
        etag: r.get(5)?,
        last_modified: r.get(6)?,
        last_sync: r.get(7)?,
        last_error: r.get(8)?,
        next_sync_at: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

pub(crate) struct CalendarConnectionRow {
    id: String,
    user_id: String,
    provider: String,
    url: String,
    status: String,
    etag: Option<String>,
    last_modified: Option<String>,
    last_sync: Option<i64>,
    last_error: Option<String>,
    next_sync_at: i64,
    created_at: i64,
    updated_at: i64,
}

impl CalendarConnectionRow {
    pub(crate) fn into_record(self) -> StoreResult<CalendarConnection> {
        Ok(CalendarConnection {
            id: self.id,
            user_id: self.user_id,
            provider: self.provider,
            url: self.url,
            status: self.status,
            etag: self.etag,
            last_modified: self.last_modified,
            last_sync: self.last_sync.map(ts).transpose()?,
            last_error: self.last_error,
            next_sync_at: ts(self.next_sync_at)?,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        })
    }
}

pub(crate) const CALENDAR_COLUMNS: &str = "id, connection_id, user_id, name, provider, is_primary, selected, event_count, \
     created_at, updated_at, remote_id, sync_cursor, writable";

pub(crate) struct CalendarRow {
    record: CalendarRecord,
    created_at: i64,
    updated_at: i64,
}

pub(crate) fn read_calendar(r: &Row<'_>) -> rusqlite::Result<CalendarRow> {
    Ok(CalendarRow {
        record: CalendarRecord {
            id: r.get(0)?,
            connection_id: r.get(1)?,
            user_id: r.get(2)?,
            name: r.get(3)?,
            provider: r.get(4)?,
            primary: r.get(5)?,
            selected: r.get(6)?,
            event_count: r.get(7)?,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            remote_id: r.get(10)?,
            cursor: r.get(11)?,
            writable: r.get(12)?,
        },
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

pub(crate) fn calendar_of(row: CalendarRow) -> StoreResult<CalendarRecord> {
    Ok(CalendarRecord { created_at: ts(row.created_at)?, updated_at: ts(row.updated_at)?, ..row.record })
}

pub(crate) fn insert(
    c: &Connection,
    t: &Tenant,
    conn: &CalendarConnection,
    cal: &CalendarRecord,
    source: &str,
    busy: &[Interval],
) -> StoreResult<()> {
    insert_connection(c, t, conn, None)?;
    insert_calendar(c, t, cal, source)?;
    if cal.selected {
        replace_busy(c, t, &cal.user_id, &cal.id, busy)?;
    }
    Ok(())
}

/// Inserts a connection (with its sealed credentials, for provider accounts);
/// `Conflict("url")` when the user already has it.
pub(crate) fn insert_connection(
    c: &Connection,
    t: &Tenant,
    conn: &CalendarConnection,
    secret: Option<&str>,
) -> StoreResult<()> {
    c.prepare_cached(&format!(
        "INSERT INTO calendar_connections (account_id, mode, secret, {CONNECTION_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            t.account_id,
            t.mode.as_str(),
            secret,
            conn.id,
            conn.user_id,
            conn.provider,
            conn.url,
            conn.status,
            conn.etag,
            conn.last_modified,
            conn.last_sync.map(ms),
            conn.last_error,
            ms(conn.next_sync_at),
            ms(conn.created_at),
            ms(conn.updated_at)
        ])
    })
    .map_err(unique("url"))?;
    Ok(())
}

pub(crate) fn insert_calendar(c: &Connection, t: &Tenant, cal: &CalendarRecord, source: &str) -> StoreResult<()> {
    c.prepare_cached(&format!(
        "INSERT INTO calendars (account_id, mode, {CALENDAR_COLUMNS}, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            t.account_id,
            t.mode.as_str(),
            cal.id,
            cal.connection_id,
            cal.user_id,
            cal.name,
            cal.provider,
            cal.primary,
            cal.selected,
            cal.event_count,
            ms(cal.created_at),
            ms(cal.updated_at),
            cal.remote_id,
            cal.cursor,
            cal.writable,
            source
        ])
    })
    .map_err(error)?;
    Ok(())
}

pub(crate) fn replace_busy(
    c: &Connection,
    t: &Tenant,
    user_id: &str,
    calendar_id: &str,
    busy: &[Interval],
) -> StoreResult<()> {
    c.prepare_cached("DELETE FROM busy_blocks WHERE source = ?1")
        .and_then(|mut s| s.execute([calendar_id]))
        .map_err(error)?;
    let blocks: Vec<NewBusyBlock> =
        busy.iter().map(|i| NewBusyBlock { interval: *i, source: calendar_id.to_string() }).collect();
    add_busy_blocks(c, t, user_id, &blocks)
}

pub(crate) fn connections(c: &Connection, t: &Tenant, user_id: Option<&str>) -> StoreResult<Vec<CalendarConnection>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM calendar_connections
              WHERE account_id = ?1 AND mode = ?2 AND (?3 IS NULL OR user_id = ?3) ORDER BY id"
        ))
        .and_then(|mut s| {
            s.query_map(params![t.account_id, t.mode.as_str(), user_id], read_connection)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter().map(CalendarConnectionRow::into_record).collect()
}

pub(crate) fn calendars(c: &Connection, t: &Tenant, user_id: Option<&str>) -> StoreResult<Vec<CalendarRecord>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {CALENDAR_COLUMNS} FROM calendars
              WHERE account_id = ?1 AND mode = ?2 AND (?3 IS NULL OR user_id = ?3) ORDER BY id"
        ))
        .and_then(|mut s| {
            s.query_map(params![t.account_id, t.mode.as_str(), user_id], read_calendar)?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter().map(calendar_of).collect()
}

pub(crate) fn sources(c: &Connection, t: &Tenant, user_id: &str) -> StoreResult<Vec<(CalendarRecord, String)>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {CALENDAR_COLUMNS}, source FROM calendars
              WHERE account_id = ?1 AND mode = ?2 AND user_id = ?3 ORDER BY id"
        ))
        .and_then(|mut s| {
            s.query_map(params![t.account_id, t.mode.as_str(), user_id], |r| Ok((read_calendar(r)?, r.get(13)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter().map(|(row, source)| Ok((calendar_of(row)?, source))).collect()
}

pub(crate) fn select(
    c: &Connection,
    t: &Tenant,
    id: &str,
    selected: bool,
    now: Timestamp,
) -> StoreResult<CalendarRecord> {
    let row = c
        .prepare_cached(&format!(
            "SELECT {CALENDAR_COLUMNS} FROM calendars WHERE id = ?1 AND account_id = ?2 AND mode = ?3"
        ))
        .and_then(|mut s| s.query_row(params![id, t.account_id, t.mode.as_str()], read_calendar).optional())
        .map_err(error)?
        .ok_or(StoreError::NotFound)?;
    let mut cal = calendar_of(row)?;
    if cal.selected == selected {
        return Ok(cal);
    }
    c.prepare_cached("UPDATE calendars SET selected = ?1, updated_at = ?2 WHERE id = ?3")
        .and_then(|mut s| s.execute(params![selected, ms(now), id]))
        .map_err(error)?;
    if selected {
        // The next background pass syncs it and writes its busy time.
        c.prepare_cached(
            "UPDATE calendar_connections SET next_sync_at = ?1, etag = NULL, last_modified = NULL WHERE id = ?2",
        )
        .and_then(|mut s| s.execute(params![ms(now), cal.connection_id]))
        .map_err(error)?;
    } else {
        c.prepare_cached("DELETE FROM busy_blocks WHERE source = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(error)?;
    }
    cal.selected = selected;
    cal.updated_at = now;
    Ok(cal)
}

/// Records a sync; returns the user whose busy time changed, if any.
pub(crate) fn record(c: &Connection, t: &Tenant, r: &SyncRecord) -> StoreResult<Option<String>> {
    let user_id: Option<String> = c
        .prepare_cached("SELECT user_id FROM calendar_connections WHERE id = ?1 AND account_id = ?2 AND mode = ?3")
        .and_then(|mut s| {
            s.query_row(params![r.connection_id, t.account_id, t.mode.as_str()], |row| row.get(0)).optional()
        })
        .map_err(error)?;
    // Disconnected while syncing: nothing to record.
    let Some(user_id) = user_id else { return Ok(None) };
    match &r.outcome {
        SyncOutcome::Failed(why) => {
            c.prepare_cached(
                "UPDATE calendar_connections SET status = 'error', last_error = ?1, next_sync_at = ?2, updated_at = ?3
                  WHERE id = ?4",
            )
            .and_then(|mut s| s.execute(params![why, ms(r.next_sync_at), ms(r.at), r.connection_id]))
            .map_err(error)?;
            Ok(None)
        }
        SyncOutcome::Unchanged => {
            c.prepare_cached(
                "UPDATE calendar_connections SET status = 'active', last_error = NULL, last_sync = ?1, next_sync_at = ?2,
                        updated_at = ?1 WHERE id = ?3",
            )
            .and_then(|mut s| s.execute(params![ms(r.at), ms(r.next_sync_at), r.connection_id]))
            .map_err(error)?;
            Ok(None)
        }
        SyncOutcome::Changed { source, name, etag, last_modified, events, busy } => {
            c.prepare_cached(
                "UPDATE calendar_connections SET status = 'active', last_error = NULL, last_sync = ?1, next_sync_at = ?2,
                        etag = ?3, last_modified = ?4, updated_at = ?1 WHERE id = ?5",
            )
            .and_then(|mut s| s.execute(params![ms(r.at), ms(r.next_sync_at), etag, last_modified, r.connection_id]))
            .map_err(error)?;
            let calendars: Vec<(String, bool)> = c
                .prepare_cached("SELECT id, selected FROM calendars WHERE connection_id = ?1")
                .and_then(|mut s| s.query_map([&r.connection_id], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
                .map_err(error)?;
            for (id, selected) in calendars {
                c.prepare_cached(
                    "UPDATE calendars SET source = ?1, event_count = ?2, name = coalesce(?3, name), updated_at = ?4
                      WHERE id = ?5",
                )
                .and_then(|mut s| s.execute(params![source, events, name, ms(r.at), id]))
                .map_err(error)?;
                if selected {
                    replace_busy(c, t, &user_id, &id, busy)?;
                }
            }
            Ok(Some(user_id))
        }
    }
}

/// Deletes connections with their calendars and busy time; returns the connections deleted
/// and the users whose busy time changed.
pub(crate) fn delete(
    c: &Connection,
    t: &Tenant,
    user_id: Option<&str>,
    provider: &str,
    now: Timestamp,
) -> StoreResult<(usize, Vec<String>)> {
    let doomed: Vec<(String, String)> = c
        .prepare_cached(
            "SELECT cal.id, cal.user_id FROM calendars cal JOIN calendar_connections conn ON conn.id = cal.connection_id
              WHERE conn.account_id = ?1 AND conn.mode = ?2 AND conn.provider = ?3 AND (?4 IS NULL OR conn.user_id = ?4)",
        )
        .and_then(|mut s| {
            s.query_map(params![t.account_id, t.mode.as_str(), provider, user_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(error)?;
    for (calendar, _) in &doomed {
        c.prepare_cached("DELETE FROM busy_blocks WHERE source = ?1")
            .and_then(|mut s| s.execute([calendar]))
            .map_err(error)?;
    }
    if crate::providers::is_oauth(provider) {
        for conn in connections(c, t, user_id)?.iter().filter(|conn| conn.provider == provider) {
            crate::providers::record_connection_event(c, t, "consent.revoked", conn, now)?;
        }
    }
    let n = c
        .prepare_cached(
            "DELETE FROM calendar_connections
              WHERE account_id = ?1 AND mode = ?2 AND provider = ?3 AND (?4 IS NULL OR user_id = ?4)",
        )
        .and_then(|mut s| s.execute(params![t.account_id, t.mode.as_str(), provider, user_id]))
        .map_err(error)?;
    Ok((n, doomed.into_iter().map(|(_, user)| user).collect()))
}

pub(crate) fn due(c: &Connection, now: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, CalendarConnection)>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {CONNECTION_COLUMNS}, account_id, mode FROM calendar_connections
              WHERE next_sync_at <= ?1 AND status != 'needs_reauth' ORDER BY next_sync_at LIMIT ?2"
        ))
        .and_then(|mut s| {
            s.query_map(params![ms(now), limit as i64], |r| {
                Ok((read_connection(r)?, r.get::<_, String>(12)?, r.get::<_, String>(13)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter()
        .map(|(row, account_id, mode)| {
            let mode =
                kairos_store::Mode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown mode {mode}")))?;
            Ok((Tenant { account_id, mode }, row.into_record()?))
        })
        .collect()
}
