//! Provider connections (Google, Microsoft, CalDAV): sealed credentials, the items each
//! calendar holds and their cursors, the connection lifecycle events, pending OAuth
//! authorizations and push channels.

use jiff::Timestamp;
use kairos_store::{
    CalendarConnection, CalendarItem, CalendarRecord, CalendarSync, Connected, OAuthState, ProviderSyncOutcome,
    ProviderSyncRecord, PushChannel, StoreError, StoreResult, Tenant, event_envelope, ids,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::calendars::{
    CALENDAR_COLUMNS, CONNECTION_COLUMNS, calendar_of, insert_calendar, insert_connection, read_calendar,
    read_connection, replace_busy,
};
use crate::db::error;
use crate::rows::{ms, ts};

/// Providers whose connections are OAuth grants (consent events apply to them).
pub(crate) fn is_oauth(provider: &str) -> bool {
    matches!(provider, "google" | "microsoft")
}

#[derive(Serialize)]
struct ConnectionData<'a> {
    connection: ConnectionView<'a>,
}

#[derive(Serialize)]
struct ConnectionView<'a> {
    id: &'a str,
    user_id: &'a str,
    provider: &'a str,
    account: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// Records a connection lifecycle event (`consent.*`, `connection.*`) in the outbox.
pub(crate) fn record_connection_event(
    c: &Connection,
    t: &Tenant,
    event_type: &str,
    conn: &CalendarConnection,
    now: Timestamp,
) -> StoreResult<()> {
    let id = ids::new_id("evt");
    let data = ConnectionData {
        connection: ConnectionView {
            id: &conn.id,
            user_id: &conn.user_id,
            provider: &conn.provider,
            account: &conn.url,
            status: &conn.status,
            reason: conn.last_error.as_deref(),
        },
    };
    let payload = event_envelope(&id, event_type, now, &data);
    c.prepare_cached(
        "INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![id, t.account_id, t.mode.as_str(), event_type, payload, ms(now)]))
    .map_err(error)?;
    Ok(())
}

#[derive(Serialize)]
struct EventChangeData<'a> {
    calendar_event: EventChangeView<'a>,
}

#[derive(Serialize)]
struct EventChangeView<'a> {
    /// As `GET /v1/events` names the event (a series' instances add their start).
    id: String,
    calendar_id: &'a str,
    user_id: &'a str,
    uid: &'a str,
    remote_id: &'a str,
}

fn record_event_change(
    c: &Connection,
    t: &Tenant,
    user_id: &str,
    calendar_id: &str,
    change: &kairos_store::EventChange,
    now: Timestamp,
) -> StoreResult<()> {
    let id = ids::new_id("evt");
    let event_type = format!("calendar_event.{}", change.kind);
    let data = EventChangeData {
        calendar_event: EventChangeView {
            id: format!("{calendar_id}:{}", change.uid),
            calendar_id,
            user_id,
            uid: &change.uid,
            remote_id: &change.remote_id,
        },
    };
    let payload = event_envelope(&id, &event_type, now, &data);
    c.prepare_cached(
        "INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![id, t.account_id, t.mode.as_str(), event_type, payload, ms(now)]))
    .map_err(error)?;
    Ok(())
}

fn connection(c: &Connection, t: &Tenant, id: &str) -> StoreResult<Option<CalendarConnection>> {
    c.prepare_cached(&format!(
        "SELECT {CONNECTION_COLUMNS} FROM calendar_connections WHERE id = ?1 AND account_id = ?2 AND mode = ?3"
    ))
    .and_then(|mut s| s.query_row(params![id, t.account_id, t.mode.as_str()], read_connection).optional())
    .map_err(error)?
    .map(|row| row.into_record())
    .transpose()
}

fn calendars_of(c: &Connection, connection_id: &str) -> StoreResult<Vec<CalendarRecord>> {
    let rows = c
        .prepare_cached(&format!("SELECT {CALENDAR_COLUMNS} FROM calendars WHERE connection_id = ?1 ORDER BY id"))
        .and_then(|mut s| s.query_map([connection_id], read_calendar)?.collect::<Result<Vec<_>, _>>())
        .map_err(error)?;
    rows.into_iter().map(calendar_of).collect()
}

pub(crate) fn connect(
    c: &Connection,
    t: &Tenant,
    conn: &CalendarConnection,
    secret: &str,
    calendars: &[CalendarRecord],
    now: Timestamp,
) -> StoreResult<Connected> {
    let existing: Option<String> = c
        .prepare_cached(
            "SELECT id FROM calendar_connections
              WHERE account_id = ?1 AND mode = ?2 AND user_id = ?3 AND provider = ?4 AND url = ?5",
        )
        .and_then(|mut s| {
            s.query_row(params![t.account_id, t.mode.as_str(), conn.user_id, conn.provider, conn.url], |r| r.get(0))
                .optional()
        })
        .map_err(error)?;
    let (id, existed, reactivated) = match existing {
        Some(id) => {
            // The secret was sealed for the id the caller gave: another connect of this
            // account won the race; the caller seals for this one and tries again.
            if id != conn.id {
                return Err(StoreError::Conflict("id"));
            }
            let before = connection(c, t, &id)?.ok_or(StoreError::NotFound)?;
            c.prepare_cached(
                "UPDATE calendar_connections SET secret = ?1, status = 'active', last_error = NULL, next_sync_at = ?2,
                        updated_at = ?2 WHERE id = ?3",
            )
            .and_then(|mut s| s.execute(params![secret, ms(now), id]))
            .map_err(error)?;
            // Writes that gave up while the grant was gone get another chance.
            c.prepare_cached(
                "UPDATE calendar_writes SET status = 'pending', attempts = 0, next_attempt_at = ?1
                  WHERE connection_id = ?2 AND status = 'failed'",
            )
            .and_then(|mut s| s.execute(params![ms(now), id]))
            .map_err(error)?;
            (id, true, before.status == "needs_reauth")
        }
        None => {
            insert_connection(c, t, conn, Some(secret))?;
            (conn.id.clone(), false, false)
        }
    };
    let known: Vec<Option<String>> = calendars_of(c, &id)?.into_iter().map(|cal| cal.remote_id).collect();
    for cal in calendars.iter().filter(|cal| !known.contains(&cal.remote_id)) {
        let cal = CalendarRecord { connection_id: id.clone(), ..cal.clone() };
        insert_calendar(c, t, &cal, "")?;
    }
    let stored = connection(c, t, &id)?.ok_or(StoreError::NotFound)?;
    if is_oauth(&stored.provider) {
        record_connection_event(c, t, "consent.granted", &stored, now)?;
        if reactivated {
            record_connection_event(c, t, "connection.reactivated", &stored, now)?;
        }
    }
    Ok(Connected { calendars: calendars_of(c, &id)?, connection: stored, existed, reactivated })
}

pub(crate) fn secret(c: &Connection, t: &Tenant, id: &str) -> StoreResult<Option<String>> {
    c.prepare_cached("SELECT secret FROM calendar_connections WHERE id = ?1 AND account_id = ?2 AND mode = ?3")
        .and_then(|mut s| s.query_row(params![id, t.account_id, t.mode.as_str()], |r| r.get(0)).optional())
        .map(Option::flatten)
        .map_err(error)
}

pub(crate) fn store_secret(c: &Connection, t: &Tenant, id: &str, secret: &str, now: Timestamp) -> StoreResult<()> {
    let n = c
        .prepare_cached(
            "UPDATE calendar_connections SET secret = ?1, updated_at = ?2 WHERE id = ?3 AND account_id = ?4 AND mode = ?5",
        )
        .and_then(|mut s| s.execute(params![secret, ms(now), id, t.account_id, t.mode.as_str()]))
        .map_err(error)?;
    if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

pub(crate) fn items(c: &Connection, t: &Tenant, calendar_id: &str) -> StoreResult<Vec<CalendarItem>> {
    c.prepare_cached(
        "SELECT i.remote_id, i.etag, i.ical FROM calendar_items i JOIN calendars cal ON cal.id = i.calendar_id
          WHERE i.calendar_id = ?1 AND cal.account_id = ?2 AND cal.mode = ?3 ORDER BY i.remote_id",
    )
    .and_then(|mut s| {
        s.query_map(params![calendar_id, t.account_id, t.mode.as_str()], |r| {
            Ok(CalendarItem { remote_id: r.get(0)?, etag: r.get(1)?, ical: r.get(2)? })
        })?
        .collect()
    })
    .map_err(error)
}

fn apply(c: &Connection, t: &Tenant, user_id: &str, sync: &CalendarSync, at: Timestamp) -> StoreResult<bool> {
    let selected: Option<bool> = c
        .prepare_cached("SELECT selected FROM calendars WHERE id = ?1 AND account_id = ?2 AND mode = ?3")
        .and_then(|mut s| {
            s.query_row(params![sync.calendar_id, t.account_id, t.mode.as_str()], |r| r.get(0)).optional()
        })
        .map_err(error)?;
    // Deselected or removed meanwhile: nothing to record for it.
    let Some(selected) = selected else { return Ok(false) };
    if sync.full {
        c.prepare_cached("DELETE FROM calendar_items WHERE calendar_id = ?1")
            .and_then(|mut s| s.execute([&sync.calendar_id]))
            .map_err(error)?;
    }
    {
        let mut remove =
            c.prepare_cached("DELETE FROM calendar_items WHERE calendar_id = ?1 AND remote_id = ?2").map_err(error)?;
        for id in &sync.removed {
            remove.execute(params![sync.calendar_id, id]).map_err(error)?;
        }
        let mut upsert = c
            .prepare_cached(
                "INSERT INTO calendar_items (calendar_id, remote_id, etag, ical) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (calendar_id, remote_id) DO UPDATE SET etag = excluded.etag, ical = excluded.ical",
            )
            .map_err(error)?;
        for item in &sync.upserts {
            upsert.execute(params![sync.calendar_id, item.remote_id, item.etag, item.ical]).map_err(error)?;
        }
    }
    c.prepare_cached(
        "UPDATE calendars SET source = ?1, event_count = ?2, sync_cursor = ?3, updated_at = ?4 WHERE id = ?5",
    )
    .and_then(|mut s| s.execute(params![sync.source, sync.events, sync.cursor, ms(at), sync.calendar_id]))
    .map_err(error)?;
    if selected {
        replace_busy(c, t, user_id, &sync.calendar_id, &sync.busy)?;
    }
    for change in &sync.changes {
        record_event_change(c, t, user_id, &sync.calendar_id, change, at)?;
    }
    Ok(selected)
}

/// Records a provider sync; returns the user whose busy time changed, if any.
pub(crate) fn record_sync(c: &Connection, t: &Tenant, r: &ProviderSyncRecord) -> StoreResult<Option<String>> {
    // Disconnected while syncing: nothing to record.
    let Some(conn) = connection(c, t, &r.connection_id)? else { return Ok(None) };
    match &r.outcome {
        ProviderSyncOutcome::Failed(why) => {
            c.prepare_cached(
                // A connection waiting for its user to reconnect stays so: a passing failure
                // (the token endpoint down) must not hide that, nor announce it twice.
                "UPDATE calendar_connections
                    SET status = CASE WHEN status = 'needs_reauth' THEN status ELSE 'error' END,
                        last_error = ?1, next_sync_at = ?2, updated_at = ?3
                  WHERE id = ?4",
            )
            .and_then(|mut s| s.execute(params![why, ms(r.next_sync_at), ms(r.at), conn.id]))
            .map_err(error)?;
            Ok(None)
        }
        ProviderSyncOutcome::NeedsReauth(why) => {
            c.prepare_cached(
                "UPDATE calendar_connections SET status = 'needs_reauth', last_error = ?1, next_sync_at = ?2,
                        updated_at = ?3 WHERE id = ?4",
            )
            .and_then(|mut s| s.execute(params![why, ms(r.next_sync_at), ms(r.at), conn.id]))
            .map_err(error)?;
            if conn.status != "needs_reauth" {
                let now =
                    CalendarConnection { status: "needs_reauth".into(), last_error: Some(why.clone()), ..conn.clone() };
                record_connection_event(c, t, "connection.needs_reauth", &now, r.at)?;
            }
            Ok(None)
        }
        ProviderSyncOutcome::Synced(calendars) => {
            c.prepare_cached(
                // A sync asked for while this one ran (a push about a later change) keeps the
                // connection due: the change may not be in what this sync read.
                "UPDATE calendar_connections SET status = 'active', last_error = NULL, last_sync = ?1,
                        next_sync_at = CASE WHEN sync_requested_at >= ?1 THEN ?1 ELSE ?2 END, updated_at = ?1
                  WHERE id = ?3",
            )
            .and_then(|mut s| s.execute(params![ms(r.at), ms(r.next_sync_at), conn.id]))
            .map_err(error)?;
            let mut changed = false;
            for sync in calendars {
                changed |= apply(c, t, &conn.user_id, sync, r.at)?;
            }
            Ok(changed.then_some(conn.user_id))
        }
    }
}

pub(crate) fn request_sync(c: &Connection, t: &Tenant, id: &str, now: Timestamp) -> StoreResult<bool> {
    c.prepare_cached(
        "UPDATE calendar_connections SET next_sync_at = min(next_sync_at, ?1), sync_requested_at = ?1
          WHERE id = ?2 AND account_id = ?3 AND mode = ?4 AND status != 'needs_reauth'",
    )
    .and_then(|mut s| s.execute(params![ms(now), id, t.account_id, t.mode.as_str()]))
    .map(|n| n > 0)
    .map_err(error)
}

pub(crate) fn insert_state(c: &Connection, t: &Tenant, s: &OAuthState) -> StoreResult<()> {
    // Expired authorizations are dropped as new ones arrive: the table stays small without a
    // sweep of its own.
    c.prepare_cached("DELETE FROM oauth_states WHERE expires_at < ?1")
        .and_then(|mut st| st.execute([ms(s.created_at)]))
        .map_err(error)?;
    c.prepare_cached(
        "INSERT INTO oauth_states (nonce, account_id, mode, provider, user_id, redirect_uri, app_state, verifier,
                                   expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.nonce,
            t.account_id,
            t.mode.as_str(),
            s.provider,
            s.user_id,
            s.redirect_uri,
            s.app_state,
            s.verifier,
            ms(s.expires_at),
            ms(s.created_at)
        ])
    })
    .map_err(error)?;
    Ok(())
}

pub(crate) fn take_state(c: &Connection, nonce: &str, now: Timestamp) -> StoreResult<Option<(Tenant, OAuthState)>> {
    let row = c
        .prepare_cached(
            "DELETE FROM oauth_states WHERE nonce = ?1
             RETURNING account_id, mode, provider, user_id, redirect_uri, app_state, verifier, expires_at, created_at",
        )
        .and_then(|mut s| {
            s.query_row([nonce], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    OAuthState {
                        nonce: nonce.to_string(),
                        provider: r.get(2)?,
                        user_id: r.get(3)?,
                        redirect_uri: r.get(4)?,
                        app_state: r.get(5)?,
                        verifier: r.get(6)?,
                        expires_at: Timestamp::UNIX_EPOCH,
                        created_at: Timestamp::UNIX_EPOCH,
                    },
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })
            .optional()
        })
        .map_err(error)?;
    let Some((account_id, mode, state, expires_at, created_at)) = row else { return Ok(None) };
    let state = OAuthState { expires_at: ts(expires_at)?, created_at: ts(created_at)?, ..state };
    if state.expires_at <= now {
        return Ok(None);
    }
    let mode = kairos_store::Mode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown mode {mode}")))?;
    Ok(Some((Tenant { account_id, mode }, state)))
}

const CHANNEL_COLUMNS: &str =
    "id, connection_id, calendar_id, provider, resource_id, token_hash, expires_at, created_at, account_id, mode";

fn read_channel(r: &rusqlite::Row<'_>) -> rusqlite::Result<(PushChannel, i64, i64, String, String)> {
    Ok((
        PushChannel {
            id: r.get(0)?,
            connection_id: r.get(1)?,
            calendar_id: r.get(2)?,
            provider: r.get(3)?,
            resource_id: r.get(4)?,
            token_hash: r.get(5)?,
            expires_at: Timestamp::UNIX_EPOCH,
            created_at: Timestamp::UNIX_EPOCH,
        },
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn channel_of(row: (PushChannel, i64, i64, String, String)) -> StoreResult<(Tenant, PushChannel)> {
    let (channel, expires_at, created_at, account_id, mode) = row;
    let mode = kairos_store::Mode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown mode {mode}")))?;
    Ok((
        Tenant { account_id, mode },
        PushChannel { expires_at: ts(expires_at)?, created_at: ts(created_at)?, ..channel },
    ))
}

pub(crate) fn save_channel(c: &Connection, t: &Tenant, ch: &PushChannel) -> StoreResult<()> {
    c.prepare_cached(&format!(
        "INSERT INTO push_channels ({CHANNEL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET resource_id = excluded.resource_id, token_hash = excluded.token_hash,
                                        expires_at = excluded.expires_at"
    ))
    .and_then(|mut s| {
        s.execute(params![
            ch.id,
            ch.connection_id,
            ch.calendar_id,
            ch.provider,
            ch.resource_id,
            ch.token_hash,
            ms(ch.expires_at),
            ms(ch.created_at),
            t.account_id,
            t.mode.as_str()
        ])
    })
    .map_err(error)?;
    Ok(())
}

pub(crate) fn channel(c: &Connection, id: &str) -> StoreResult<Option<(Tenant, PushChannel)>> {
    c.prepare_cached(&format!("SELECT {CHANNEL_COLUMNS} FROM push_channels WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], read_channel).optional())
        .map_err(error)?
        .map(channel_of)
        .transpose()
}

pub(crate) fn channels(c: &Connection, t: &Tenant, connection_id: &str) -> StoreResult<Vec<PushChannel>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM push_channels WHERE connection_id = ?1 AND account_id = ?2 AND mode = ?3
              ORDER BY id"
        ))
        .and_then(|mut s| {
            s.query_map(params![connection_id, t.account_id, t.mode.as_str()], read_channel)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    rows.into_iter().map(|row| channel_of(row).map(|(_, ch)| ch)).collect()
}

pub(crate) fn expiring(c: &Connection, before: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, PushChannel)>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM push_channels WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2"
        ))
        .and_then(|mut s| s.query_map(params![ms(before), limit as i64], read_channel)?.collect::<Result<Vec<_>, _>>())
        .map_err(error)?;
    rows.into_iter().map(channel_of).collect()
}

pub(crate) fn delete_channel(c: &Connection, t: &Tenant, id: &str) -> StoreResult<bool> {
    c.prepare_cached("DELETE FROM push_channels WHERE id = ?1 AND account_id = ?2 AND mode = ?3")
        .and_then(|mut s| s.execute(params![id, t.account_id, t.mode.as_str()]))
        .map(|n| n > 0)
        .map_err(error)
}
