//! Provider connections (Google, Microsoft, CalDAV): sealed credentials, the items each
//! calendar holds and their cursors, the connection lifecycle events, pending OAuth
//! authorizations and push channels.
//!
//! A connection's row is locked (`FOR UPDATE`) while a connect or a sync is recorded, so two
//! nodes recording at once neither lose a change nor announce a lifecycle event twice. Items
//! and change events go in with one `UNNEST` statement each: a full sync can carry thousands.

use std::collections::HashMap;

use jiff::Timestamp;
use kairos_store::{
    CalendarConnection, CalendarItem, CalendarRecord, CalendarSync, Connected, EventChange, OAuthState,
    ProviderSyncOutcome, ProviderSyncRecord, PushChannel, StoreError, StoreResult, Tenant, event_envelope, ids,
};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::calendars::{
    CalendarRow, ConnectionRow, calendar_columns, connection_columns, insert_calendar, replace_busy, tenant_of,
};
use crate::db::{self, error};
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

/// Records a connection lifecycle event (`consent.*`, `connection.*`) in the outbox, in the
/// caller's transaction.
pub(crate) async fn record_connection_event(
    c: &mut PgConnection,
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
    sqlx::query(
        "INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(event_type)
    .bind(&payload)
    .bind(ms(now))
    .execute(c)
    .await
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

/// Records a sync's `calendar_event.*` events, in order, with one statement.
async fn record_event_changes(
    c: &mut PgConnection,
    t: &Tenant,
    user_id: &str,
    calendar_id: &str,
    changes: &[EventChange],
    now: Timestamp,
) -> StoreResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let (mut event_ids, mut types, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
    for change in changes {
        // Ids increase within the process: the outbox keeps the sync's order.
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
        payloads.push(event_envelope(&id, &event_type, now, &data));
        event_ids.push(id);
        types.push(event_type);
    }
    sqlx::query(
        "INSERT INTO outbox_events (id, account_id, mode, event_type, payload, created_at)
         SELECT e.id, $1, $2, e.event_type, e.payload, $3 FROM UNNEST($4::text[], $5::text[], $6::text[])
             AS e (id, event_type, payload)",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(ms(now))
    .bind(&event_ids)
    .bind(&types)
    .bind(&payloads)
    .execute(c)
    .await
    .map_err(error)?;
    Ok(())
}

/// The tenant's connection `id`, locked until the transaction ends.
///
/// Its user is locked first (`FOR KEY SHARE`, which only conflicts with deleting or re-keying
/// the user): deleting a user locks the user, then its connections through the cascade, so
/// taking the two in that same order here means a sync recorded while its user is deleted
/// waits, then finds nothing, instead of deadlocking on the busy blocks' foreign key.
pub(crate) async fn lock_connection(
    c: &mut PgConnection,
    t: &Tenant,
    id: &str,
) -> StoreResult<Option<CalendarConnection>> {
    sqlx::query(
        "SELECT 1 FROM users WHERE id = (SELECT user_id FROM calendar_connections
                                          WHERE id = $1 AND account_id = $2 AND mode = $3) FOR KEY SHARE",
    )
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(&mut *c)
    .await
    .map_err(error)?;
    sqlx::query_as::<_, ConnectionRow>(concat!(
        "SELECT ",
        connection_columns!(),
        " FROM calendar_connections WHERE id = $1 AND account_id = $2 AND mode = $3 FOR UPDATE"
    ))
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_optional(c)
    .await
    .map_err(error)?
    .map(ConnectionRow::into_record)
    .transpose()
}

async fn calendars_of(c: impl PgExecutor<'_>, connection_id: &str) -> StoreResult<Vec<CalendarRecord>> {
    let rows = sqlx::query_as::<_, CalendarRow>(concat!(
        "SELECT ",
        calendar_columns!(),
        " FROM calendars WHERE connection_id = $1 ORDER BY id"
    ))
    .bind(connection_id)
    .fetch_all(c)
    .await
    .map_err(error)?;
    rows.into_iter().map(CalendarRow::into_record).collect()
}

/// Connects a provider account: a new connection, or the user's existing one for that
/// account reconnected in place (new secret, active again, new calendars added).
pub(crate) async fn connect(
    db: &PgPool,
    t: &Tenant,
    conn: &CalendarConnection,
    secret: &str,
    calendars: &[CalendarRecord],
    now: Timestamp,
) -> StoreResult<Connected> {
    let mut tx = db.begin().await.map_err(error)?;
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT id FROM calendar_connections
          WHERE account_id = $1 AND mode = $2 AND user_id = $3 AND provider = $4 AND url = $5 FOR UPDATE",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&conn.user_id)
    .bind(&conn.provider)
    .bind(&conn.url)
    .fetch_optional(&mut *tx)
    .await
    .map_err(error)?;
    let (id, existed, reactivated) = match existing {
        Some(id) => {
            // The secret was sealed for the id the caller gave: another connect of this
            // account won the race; the caller seals for this one and tries again.
            if id != conn.id {
                return Err(StoreError::Conflict("id"));
            }
            let before = lock_connection(&mut tx, t, &id).await?.ok_or(StoreError::NotFound)?;
            sqlx::query(
                "UPDATE calendar_connections SET secret = $1, status = 'active', last_error = NULL, next_sync_at = $2,
                        updated_at = $2 WHERE id = $3",
            )
            .bind(secret)
            .bind(ms(now))
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
            // Writes that gave up while the grant was gone get another chance.
            sqlx::query(
                "UPDATE calendar_writes SET status = 'pending', attempts = 0, next_attempt_at = $1
                  WHERE connection_id = $2 AND status = 'failed'",
            )
            .bind(ms(now))
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
            (id, true, before.status == "needs_reauth")
        }
        None => {
            // Another node may be connecting the same account right now: whoever inserts
            // second finds the row taken and is sent round again (as above).
            let inserted = sqlx::query(concat!(
                "INSERT INTO calendar_connections (account_id, mode, secret, ",
                connection_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (user_id, provider, url) DO NOTHING"
            ))
            .bind(&t.account_id)
            .bind(t.mode.as_str())
            .bind(secret)
            .bind(&conn.id)
            .bind(&conn.user_id)
            .bind(&conn.provider)
            .bind(&conn.url)
            .bind(&conn.status)
            .bind(conn.etag.as_deref())
            .bind(conn.last_modified.as_deref())
            .bind(conn.last_sync.map(ms))
            .bind(conn.last_error.as_deref())
            .bind(ms(conn.next_sync_at))
            .bind(ms(conn.created_at))
            .bind(ms(conn.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(db::unique("id"))?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::Conflict("id"));
            }
            (conn.id.clone(), false, false)
        }
    };
    let known: Vec<Option<String>> = calendars_of(&mut *tx, &id).await?.into_iter().map(|cal| cal.remote_id).collect();
    for cal in calendars.iter().filter(|cal| !known.contains(&cal.remote_id)) {
        let cal = CalendarRecord { connection_id: id.clone(), ..cal.clone() };
        insert_calendar(&mut tx, t, &cal, "").await?;
    }
    let stored = lock_connection(&mut tx, t, &id).await?.ok_or(StoreError::NotFound)?;
    if is_oauth(&stored.provider) {
        record_connection_event(&mut tx, t, "consent.granted", &stored, now).await?;
        if reactivated {
            record_connection_event(&mut tx, t, "connection.reactivated", &stored, now).await?;
        }
    }
    let calendars = calendars_of(&mut *tx, &id).await?;
    tx.commit().await.map_err(error)?;
    Ok(Connected { calendars, connection: stored, existed, reactivated })
}

pub(crate) async fn secret(db: &PgPool, t: &Tenant, connection_id: &str) -> StoreResult<Option<String>> {
    let secret: Option<Option<String>> =
        sqlx::query_scalar("SELECT secret FROM calendar_connections WHERE id = $1 AND account_id = $2 AND mode = $3")
            .bind(connection_id)
            .bind(&t.account_id)
            .bind(t.mode.as_str())
            .fetch_optional(db)
            .await
            .map_err(error)?;
    Ok(secret.flatten())
}

pub(crate) async fn store_secret(
    db: &PgPool,
    t: &Tenant,
    connection_id: &str,
    secret: &str,
    now: Timestamp,
) -> StoreResult<()> {
    let n = sqlx::query(
        "UPDATE calendar_connections SET secret = $1, updated_at = $2 WHERE id = $3 AND account_id = $4 AND mode = $5",
    )
    .bind(secret)
    .bind(ms(now))
    .bind(connection_id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(db)
    .await
    .map_err(error)?
    .rows_affected();
    if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

pub(crate) async fn items(db: &PgPool, t: &Tenant, calendar_id: &str) -> StoreResult<Vec<CalendarItem>> {
    let rows: Vec<(String, Option<String>, String)> = sqlx::query_as(
        "SELECT i.remote_id, i.etag, i.ical FROM calendar_items i JOIN calendars cal ON cal.id = i.calendar_id
          WHERE i.calendar_id = $1 AND cal.account_id = $2 AND cal.mode = $3 ORDER BY i.remote_id",
    )
    .bind(calendar_id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_all(db)
    .await
    .map_err(error)?;
    Ok(rows.into_iter().map(|(remote_id, etag, ical)| CalendarItem { remote_id, etag, ical }).collect())
}

/// Applies one calendar's sync (the connection is locked by the caller).
async fn apply(c: &mut PgConnection, t: &Tenant, user_id: &str, sync: &CalendarSync, at: Timestamp) -> StoreResult<()> {
    let selected: Option<bool> =
        sqlx::query_scalar("SELECT selected FROM calendars WHERE id = $1 AND account_id = $2 AND mode = $3 FOR UPDATE")
            .bind(&sync.calendar_id)
            .bind(&t.account_id)
            .bind(t.mode.as_str())
            .fetch_optional(&mut *c)
            .await
            .map_err(error)?;
    // Removed meanwhile: nothing to record for it.
    let Some(selected) = selected else { return Ok(()) };
    if sync.full {
        sqlx::query("DELETE FROM calendar_items WHERE calendar_id = $1")
            .bind(&sync.calendar_id)
            .execute(&mut *c)
            .await
            .map_err(error)?;
    }
    if !sync.removed.is_empty() {
        sqlx::query("DELETE FROM calendar_items WHERE calendar_id = $1 AND remote_id = ANY($2)")
            .bind(&sync.calendar_id)
            .bind(&sync.removed)
            .execute(&mut *c)
            .await
            .map_err(error)?;
    }
    if !sync.upserts.is_empty() {
        // One statement may touch a row once: an item listed twice keeps its last version,
        // as applying them one by one would.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(sync.upserts.len());
        for (i, item) in sync.upserts.iter().enumerate() {
            last.insert(&item.remote_id, i);
        }
        let (mut remote_ids, mut etags, mut icals) = (Vec::new(), Vec::new(), Vec::new());
        for (i, item) in sync.upserts.iter().enumerate() {
            if last.get(item.remote_id.as_str()) == Some(&i) {
                remote_ids.push(item.remote_id.as_str());
                etags.push(item.etag.as_deref());
                icals.push(item.ical.as_str());
            }
        }
        sqlx::query(
            "INSERT INTO calendar_items (calendar_id, remote_id, etag, ical)
             SELECT $1, i.remote_id, i.etag, i.ical FROM UNNEST($2::text[], $3::text[], $4::text[])
                 AS i (remote_id, etag, ical)
             ON CONFLICT (calendar_id, remote_id) DO UPDATE SET etag = excluded.etag, ical = excluded.ical",
        )
        .bind(&sync.calendar_id)
        .bind(&remote_ids)
        .bind(&etags)
        .bind(&icals)
        .execute(&mut *c)
        .await
        .map_err(error)?;
    }
    sqlx::query("UPDATE calendars SET source = $1, event_count = $2, sync_cursor = $3, updated_at = $4 WHERE id = $5")
        .bind(&sync.source)
        .bind(i64::from(sync.events))
        .bind(sync.cursor.as_deref())
        .bind(ms(at))
        .bind(&sync.calendar_id)
        .execute(&mut *c)
        .await
        .map_err(error)?;
    // A deselected calendar keeps no busy time.
    if selected {
        replace_busy(&mut *c, t, user_id, &sync.calendar_id, &sync.busy).await?;
    }
    record_event_changes(&mut *c, t, user_id, &sync.calendar_id, &sync.changes, at).await
}

/// Records a provider sync: its outcome on the connection and, when it synced, each
/// calendar's items, cursor, busy time and change events.
pub(crate) async fn record_sync(db: &PgPool, t: &Tenant, r: &ProviderSyncRecord) -> StoreResult<()> {
    let mut tx = db.begin().await.map_err(error)?;
    // Disconnected while syncing: nothing to record.
    let Some(conn) = lock_connection(&mut tx, t, &r.connection_id).await? else { return Ok(()) };
    match &r.outcome {
        ProviderSyncOutcome::Failed(why) => {
            sqlx::query(
                // A connection waiting for its user to reconnect stays so: a passing failure
                // (the token endpoint down) must not hide that, nor announce it twice.
                "UPDATE calendar_connections
                    SET status = CASE WHEN status = 'needs_reauth' THEN status ELSE 'error' END,
                        last_error = $1, next_sync_at = $2, updated_at = $3
                  WHERE id = $4",
            )
            .bind(why)
            .bind(ms(r.next_sync_at))
            .bind(ms(r.at))
            .bind(&conn.id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        }
        ProviderSyncOutcome::NeedsReauth(why) => {
            sqlx::query(
                "UPDATE calendar_connections SET status = 'needs_reauth', last_error = $1, next_sync_at = $2,
                        updated_at = $3 WHERE id = $4",
            )
            .bind(why)
            .bind(ms(r.next_sync_at))
            .bind(ms(r.at))
            .bind(&conn.id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
            if conn.status != "needs_reauth" {
                let now =
                    CalendarConnection { status: "needs_reauth".into(), last_error: Some(why.clone()), ..conn.clone() };
                record_connection_event(&mut tx, t, "connection.needs_reauth", &now, r.at).await?;
            }
        }
        ProviderSyncOutcome::Synced(calendars) => {
            sqlx::query(
                // A sync asked for while this one ran (a push about a later change) keeps the
                // connection due: the change may not be in what this sync read.
                "UPDATE calendar_connections SET status = 'active', last_error = NULL, last_sync = $1,
                        next_sync_at = CASE WHEN sync_requested_at >= $1 THEN $1 ELSE $2 END, updated_at = $1
                  WHERE id = $3",
            )
            .bind(ms(r.at))
            .bind(ms(r.next_sync_at))
            .bind(&conn.id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
            for sync in calendars {
                apply(&mut tx, t, &conn.user_id, sync, r.at).await?;
            }
            if calendars.iter().any(|sync| !sync.changes.is_empty()) {}
        }
    }
    tx.commit().await.map_err(error)?;
    Ok(())
}

/// Asks for a sync soon (a push arrived); false when the connection is unknown or waits for
/// its user to reconnect.
pub(crate) async fn request_sync(db: &PgPool, t: &Tenant, connection_id: &str, now: Timestamp) -> StoreResult<bool> {
    let n = sqlx::query(
        "UPDATE calendar_connections SET next_sync_at = LEAST(next_sync_at, $1), sync_requested_at = $1
          WHERE id = $2 AND account_id = $3 AND mode = $4 AND status <> 'needs_reauth'",
    )
    .bind(ms(now))
    .bind(connection_id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(db)
    .await
    .map_err(error)?
    .rows_affected();
    Ok(n > 0)
}

pub(crate) async fn insert_state(db: &PgPool, t: &Tenant, state: &OAuthState) -> StoreResult<()> {
    let mut tx = db.begin().await.map_err(error)?;
    // Expired authorizations are dropped as new ones arrive: the table stays small without a
    // sweep of its own.
    sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
        .bind(ms(state.created_at))
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    sqlx::query(
        "INSERT INTO oauth_states (nonce, account_id, mode, provider, user_id, redirect_uri, app_state, verifier,
                                   expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&state.nonce)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&state.provider)
    .bind(&state.user_id)
    .bind(&state.redirect_uri)
    .bind(state.app_state.as_deref())
    .bind(&state.verifier)
    .bind(ms(state.expires_at))
    .bind(ms(state.created_at))
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    tx.commit().await.map_err(error)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct StateRow {
    account_id: String,
    mode: String,
    provider: String,
    user_id: String,
    redirect_uri: String,
    app_state: Option<String>,
    verifier: String,
    expires_at: i64,
    created_at: i64,
}

/// Takes a pending authorization: deleted as it is read, so a callback replayed (on this node
/// or another) finds nothing. An expired one is taken too, and refused.
pub(crate) async fn take_state(db: &PgPool, nonce: &str, now: Timestamp) -> StoreResult<Option<(Tenant, OAuthState)>> {
    let row = sqlx::query_as::<_, StateRow>(
        "DELETE FROM oauth_states WHERE nonce = $1
         RETURNING account_id, mode, provider, user_id, redirect_uri, app_state, verifier, expires_at, created_at",
    )
    .bind(nonce)
    .fetch_optional(db)
    .await
    .map_err(error)?;
    let Some(row) = row else { return Ok(None) };
    let state = OAuthState {
        nonce: nonce.to_string(),
        provider: row.provider,
        user_id: row.user_id,
        redirect_uri: row.redirect_uri,
        app_state: row.app_state,
        verifier: row.verifier,
        expires_at: ts(row.expires_at)?,
        created_at: ts(row.created_at)?,
    };
    if state.expires_at <= now {
        return Ok(None);
    }
    Ok(Some((tenant_of(row.account_id, &row.mode)?, state)))
}

/// The columns [`ChannelRow`] reads.
macro_rules! channel_columns {
    () => {
        "id, connection_id, calendar_id, provider, resource_id, token_hash, expires_at, created_at, account_id, mode"
    };
}

#[derive(sqlx::FromRow)]
struct ChannelRow {
    id: String,
    connection_id: String,
    calendar_id: String,
    provider: String,
    resource_id: Option<String>,
    token_hash: String,
    expires_at: i64,
    created_at: i64,
    account_id: String,
    mode: String,
}

impl ChannelRow {
    fn into_channel(self) -> StoreResult<(Tenant, PushChannel)> {
        Ok((
            tenant_of(self.account_id, &self.mode)?,
            PushChannel {
                id: self.id,
                connection_id: self.connection_id,
                calendar_id: self.calendar_id,
                provider: self.provider,
                resource_id: self.resource_id,
                token_hash: self.token_hash,
                expires_at: ts(self.expires_at)?,
                created_at: ts(self.created_at)?,
            },
        ))
    }
}

/// Saves a push channel; a renewal replaces it by id.
pub(crate) async fn save_channel(db: &PgPool, t: &Tenant, ch: &PushChannel) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO push_channels (",
        channel_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET resource_id = excluded.resource_id, token_hash = excluded.token_hash,
                                        expires_at = excluded.expires_at"
    ))
    .bind(&ch.id)
    .bind(&ch.connection_id)
    .bind(&ch.calendar_id)
    .bind(&ch.provider)
    .bind(ch.resource_id.as_deref())
    .bind(&ch.token_hash)
    .bind(ms(ch.expires_at))
    .bind(ms(ch.created_at))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(db)
    .await
    .map_err(error)?;
    Ok(())
}

pub(crate) async fn channel(db: &PgPool, id: &str) -> StoreResult<Option<(Tenant, PushChannel)>> {
    sqlx::query_as::<_, ChannelRow>(concat!("SELECT ", channel_columns!(), " FROM push_channels WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(error)?
        .map(ChannelRow::into_channel)
        .transpose()
}

pub(crate) async fn channels(db: &PgPool, t: &Tenant, connection_id: &str) -> StoreResult<Vec<PushChannel>> {
    let rows = sqlx::query_as::<_, ChannelRow>(concat!(
        "SELECT ",
        channel_columns!(),
        " FROM push_channels WHERE connection_id = $1 AND account_id = $2 AND mode = $3 ORDER BY id"
    ))
    .bind(connection_id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_all(db)
    .await
    .map_err(error)?;
    rows.into_iter().map(|row| row.into_channel().map(|(_, ch)| ch)).collect()
}

/// Channels expiring before `before`, soonest first (the renewal worker's list).
pub(crate) async fn expiring(db: &PgPool, before: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, PushChannel)>> {
    let rows = sqlx::query_as::<_, ChannelRow>(concat!(
        "SELECT ",
        channel_columns!(),
        " FROM push_channels WHERE expires_at < $1 ORDER BY expires_at, id LIMIT $2"
    ))
    .bind(ms(before))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db)
    .await
    .map_err(error)?;
    rows.into_iter().map(ChannelRow::into_channel).collect()
}

pub(crate) async fn delete_channel(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<bool> {
    let n = sqlx::query("DELETE FROM push_channels WHERE id = $1 AND account_id = $2 AND mode = $3")
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .execute(db)
        .await
        .map_err(error)?
        .rows_affected();
    Ok(n > 0)
}
