//! Calendar connections, their calendars (with the text last synced) and the busy time each
//! selected calendar holds (rows of `busy_blocks` whose source is the calendar's id).
//!
//! Each change runs in one transaction, so another node never sees a calendar's busy time
//! half replaced; busy time goes in with one `UNNEST` insert, however many blocks a sync found.

use jiff::Timestamp;
use kairos_core::Interval;
use kairos_store::{
    CalendarConnection, CalendarRecord, Mode, StoreError, StoreResult, SyncOutcome, SyncRecord, Tenant,
};
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::bookings::MAX_BLOCK;
use crate::db::{error, unique};
use crate::rows::{corrupt, ms, opt_ts, ts};

/// The tenant a row names.
pub(crate) fn tenant_of(account_id: String, mode: &str) -> StoreResult<Tenant> {
    let mode = Mode::parse(mode).ok_or_else(|| StoreError::Backend(format!("unknown mode {mode}")))?;
    Ok(Tenant { account_id, mode })
}

/// The columns [`ConnectionRow`] reads, as a literal (static SQL is built with `concat!`).
macro_rules! connection_columns {
    () => {
        "id, user_id, provider, url, status, etag, last_modified, last_sync, last_error, next_sync_at, created_at, \
         updated_at"
    };
}
pub(crate) use connection_columns;

/// The columns [`CalendarRow`] reads.
macro_rules! calendar_columns {
    () => {
        "id, connection_id, user_id, name, provider, is_primary, selected, event_count, created_at, updated_at, \
         remote_id, sync_cursor, writable"
    };
}
pub(crate) use calendar_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct ConnectionRow {
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

impl ConnectionRow {
    pub(crate) fn into_record(self) -> StoreResult<CalendarConnection> {
        Ok(CalendarConnection {
            id: self.id,
            user_id: self.user_id,
            provider: self.provider,
            url: self.url,
            status: self.status,
            etag: self.etag,
            last_modified: self.last_modified,
            last_sync: opt_ts(self.last_sync)?,
            last_error: self.last_error,
            next_sync_at: ts(self.next_sync_at)?,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CalendarRow {
    id: String,
    connection_id: String,
    user_id: String,
    name: String,
    provider: String,
    is_primary: bool,
    selected: bool,
    event_count: i64,
    created_at: i64,
    updated_at: i64,
    remote_id: Option<String>,
    sync_cursor: Option<String>,
    writable: bool,
}

impl CalendarRow {
    pub(crate) fn into_record(self) -> StoreResult<CalendarRecord> {
        Ok(CalendarRecord {
            id: self.id,
            connection_id: self.connection_id,
            user_id: self.user_id,
            name: self.name,
            provider: self.provider,
            primary: self.is_primary,
            selected: self.selected,
            event_count: u32::try_from(self.event_count).map_err(|e| corrupt("event count", e))?,
            remote_id: self.remote_id,
            cursor: self.sync_cursor,
            writable: self.writable,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        })
    }
}

pub(crate) async fn insert(
    db: &PgPool,
    t: &Tenant,
    conn: &CalendarConnection,
    cal: &CalendarRecord,
    source: &str,
    busy: &[Interval],
) -> StoreResult<()> {
    let mut tx = db.begin().await.map_err(error)?;
    insert_connection(&mut tx, t, conn, None).await?;
    insert_calendar(&mut tx, t, cal, source).await?;
    if cal.selected {
        replace_busy(&mut tx, t, &cal.user_id, &cal.id, busy).await?;
    }
    tx.commit().await.map_err(error)?;
    Ok(())
}

/// Inserts a connection (with its sealed credentials, for provider accounts);
/// `Conflict("url")` when the user already has it.
pub(crate) async fn insert_connection(
    c: &mut PgConnection,
    t: &Tenant,
    conn: &CalendarConnection,
    secret: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO calendar_connections (account_id, mode, secret, ",
        connection_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
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
    .execute(c)
    .await
    .map_err(unique("url"))?;
    Ok(())
}

pub(crate) async fn insert_calendar(
    c: &mut PgConnection,
    t: &Tenant,
    cal: &CalendarRecord,
    source: &str,
) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO calendars (account_id, mode, ",
        calendar_columns!(),
        ", source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&cal.id)
    .bind(&cal.connection_id)
    .bind(&cal.user_id)
    .bind(&cal.name)
    .bind(&cal.provider)
    .bind(cal.primary)
    .bind(cal.selected)
    .bind(i64::from(cal.event_count))
    .bind(ms(cal.created_at))
    .bind(ms(cal.updated_at))
    .bind(cal.remote_id.as_deref())
    .bind(cal.cursor.as_deref())
    .bind(cal.writable)
    .bind(source)
    .execute(c)
    .await
    .map_err(error)?;
    Ok(())
}

/// Replaces the busy time `calendar_id` holds for `user_id` (`NotFound` when the tenant has
/// no such user). Long intervals go in as pieces of at most [`MAX_BLOCK`], which bounds the
/// booking checks' overlap queries, as on SQLite.
pub(crate) async fn replace_busy(
    c: &mut PgConnection,
    t: &Tenant,
    user_id: &str,
    calendar_id: &str,
    busy: &[Interval],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM busy_blocks WHERE source = $1").bind(calendar_id).execute(&mut *c).await.map_err(error)?;
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 AND account_id = $2 AND mode = $3")
        .bind(user_id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .fetch_optional(&mut *c)
        .await
        .map_err(error)?;
    if known.is_none() {
        return Err(StoreError::NotFound);
    }
    let (mut starts, mut ends) = (Vec::with_capacity(busy.len()), Vec::with_capacity(busy.len()));
    for interval in busy {
        let mut start = interval.start();
        while start < interval.end() {
            let end = interval.end().min(start + MAX_BLOCK);
            starts.push(ms(start));
            ends.push(ms(end));
            start = end;
        }
    }
    if starts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO busy_blocks (account_id, mode, user_id, source, start_at, end_at)
         SELECT $1, $2, $3, $4, b.start_at, b.end_at FROM UNNEST($5::bigint[], $6::bigint[]) AS b (start_at, end_at)",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(user_id)
    .bind(calendar_id)
    .bind(&starts)
    .bind(&ends)
    .execute(&mut *c)
    .await
    .map_err(error)?;
    Ok(())
}

async fn connections_of(
    c: impl PgExecutor<'_>,
    t: &Tenant,
    user_id: Option<&str>,
) -> StoreResult<Vec<CalendarConnection>> {
    let rows = sqlx::query_as::<_, ConnectionRow>(concat!(
        "SELECT ",
        connection_columns!(),
        " FROM calendar_connections
          WHERE account_id = $1 AND mode = $2 AND ($3::text IS NULL OR user_id = $3) ORDER BY id"
    ))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(user_id)
    .fetch_all(c)
    .await
    .map_err(error)?;
    rows.into_iter().map(ConnectionRow::into_record).collect()
}

pub(crate) async fn connections(
    db: &PgPool,
    t: &Tenant,
    user_id: Option<&str>,
) -> StoreResult<Vec<CalendarConnection>> {
    connections_of(db, t, user_id).await
}

pub(crate) async fn calendars(db: &PgPool, t: &Tenant, user_id: Option<&str>) -> StoreResult<Vec<CalendarRecord>> {
    let rows = sqlx::query_as::<_, CalendarRow>(concat!(
        "SELECT ",
        calendar_columns!(),
        " FROM calendars WHERE account_id = $1 AND mode = $2 AND ($3::text IS NULL OR user_id = $3) ORDER BY id"
    ))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(user_id)
    .fetch_all(db)
    .await
    .map_err(error)?;
    rows.into_iter().map(CalendarRow::into_record).collect()
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    #[sqlx(flatten)]
    calendar: CalendarRow,
    source: String,
}

pub(crate) async fn sources(db: &PgPool, t: &Tenant, user_id: &str) -> StoreResult<Vec<(CalendarRecord, String)>> {
    let rows = sqlx::query_as::<_, SourceRow>(concat!(
        "SELECT ",
        calendar_columns!(),
        ", source FROM calendars WHERE account_id = $1 AND mode = $2 AND user_id = $3 ORDER BY id"
    ))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(user_id)
    .fetch_all(db)
    .await
    .map_err(error)?;
    rows.into_iter().map(|r| Ok((r.calendar.into_record()?, r.source))).collect()
}

pub(crate) async fn select(
    db: &PgPool,
    t: &Tenant,
    id: &str,
    selected: bool,
    now: Timestamp,
) -> StoreResult<CalendarRecord> {
    let mut tx = db.begin().await.map_err(error)?;
    // The connection is locked first, as a sync's record locks it before its calendars (one
    // order, no deadlocks): a sync being recorded finishes first, or sees the new selection.
    sqlx::query(
        "SELECT 1 FROM calendar_connections WHERE id = (
             SELECT connection_id FROM calendars WHERE id = $1 AND account_id = $2 AND mode = $3) FOR UPDATE",
    )
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    let mut cal = sqlx::query_as::<_, CalendarRow>(concat!(
        "SELECT ",
        calendar_columns!(),
        " FROM calendars WHERE id = $1 AND account_id = $2 AND mode = $3 FOR UPDATE"
    ))
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(error)?
    .ok_or(StoreError::NotFound)?
    .into_record()?;
    if cal.selected == selected {
        return Ok(cal);
    }
    sqlx::query("UPDATE calendars SET selected = $1, updated_at = $2 WHERE id = $3")
        .bind(selected)
        .bind(ms(now))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    if selected {
        // The next background pass syncs it (whole, not conditionally) and writes its busy time.
        sqlx::query(
            "UPDATE calendar_connections SET next_sync_at = $1, etag = NULL, last_modified = NULL WHERE id = $2",
        )
        .bind(ms(now))
        .bind(&cal.connection_id)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    } else {
        sqlx::query("DELETE FROM busy_blocks WHERE source = $1").bind(id).execute(&mut *tx).await.map_err(error)?;
    }
    tx.commit().await.map_err(error)?;
    cal.selected = selected;
    cal.updated_at = now;
    Ok(cal)
}

/// Records a feed sync: its outcome on the connection and, when the feed changed, the new
/// text and busy time of the connection's calendars.
pub(crate) async fn record(db: &PgPool, t: &Tenant, r: &SyncRecord) -> StoreResult<()> {
    let mut tx = db.begin().await.map_err(error)?;
    // Disconnected while syncing: nothing to record.
    let Some(conn) = crate::providers::lock_connection(&mut tx, t, &r.connection_id).await? else { return Ok(()) };
    let user_id = conn.user_id;
    match &r.outcome {
        SyncOutcome::Failed(why) => {
            sqlx::query(
                "UPDATE calendar_connections SET status = 'error', last_error = $1, next_sync_at = $2, updated_at = $3
                  WHERE id = $4",
            )
            .bind(why)
            .bind(ms(r.next_sync_at))
            .bind(ms(r.at))
            .bind(&r.connection_id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        }
        SyncOutcome::Unchanged => {
            sqlx::query(
                "UPDATE calendar_connections SET status = 'active', last_error = NULL, last_sync = $1, next_sync_at = $2,
                        updated_at = $1 WHERE id = $3",
            )
            .bind(ms(r.at))
            .bind(ms(r.next_sync_at))
            .bind(&r.connection_id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        }
        SyncOutcome::Changed { source, name, etag, last_modified, events, busy } => {
            sqlx::query(
                "UPDATE calendar_connections SET status = 'active', last_error = NULL, last_sync = $1, next_sync_at = $2,
                        etag = $3, last_modified = $4, updated_at = $1 WHERE id = $5",
            )
            .bind(ms(r.at))
            .bind(ms(r.next_sync_at))
            .bind(etag.as_deref())
            .bind(last_modified.as_deref())
            .bind(&r.connection_id)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
            let calendars: Vec<(String, bool)> = sqlx::query_as(
                "UPDATE calendars SET source = $1, event_count = $2, name = coalesce($3, name), updated_at = $4
                  WHERE connection_id = $5 RETURNING id, selected",
            )
            .bind(source)
            .bind(i64::from(*events))
            .bind(name.as_deref())
            .bind(ms(r.at))
            .bind(&r.connection_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(error)?;
            for (id, selected) in calendars {
                if selected {
                    replace_busy(&mut tx, t, &user_id, &id, busy).await?;
                }
            }
        }
    }
    tx.commit().await.map_err(error)?;
    Ok(())
}

/// Deletes connections with their calendars, items, channels, writes (all cascade) and busy
/// time; OAuth grants announce `consent.revoked`. Returns the connections deleted.
pub(crate) async fn delete(
    db: &PgPool,
    t: &Tenant,
    user_id: Option<&str>,
    provider: &str,
    now: Timestamp,
) -> StoreResult<usize> {
    let mut tx = db.begin().await.map_err(error)?;
    // Lock the connections first, in id order: a sync recording busy time for one of them
    // (which locks its connection before writing busy blocks) either finishes before we
    // read its blocks or finds the connection gone, and two concurrent disconnects of
    // the same connections neither deadlock nor both announce `consent.revoked`.
    let locked = sqlx::query_as::<_, ConnectionRow>(concat!(
        "SELECT ",
        connection_columns!(),
        " FROM calendar_connections
          WHERE account_id = $1 AND mode = $2 AND provider = $3 AND ($4::text IS NULL OR user_id = $4)
          ORDER BY id FOR UPDATE"
    ))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(provider)
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(error)?
    .into_iter()
    .map(ConnectionRow::into_record)
    .collect::<StoreResult<Vec<_>>>()?;
    if locked.is_empty() {
        tx.commit().await.map_err(error)?;
        return Ok(0);
    }
    let ids: Vec<&str> = locked.iter().map(|conn| conn.id.as_str()).collect();
    sqlx::query(
        "DELETE FROM busy_blocks WHERE source IN (SELECT id FROM calendars WHERE connection_id = ANY($1::text[]))",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    if crate::providers::is_oauth(provider) {
        for conn in &locked {
            crate::providers::record_connection_event(&mut tx, t, "consent.revoked", conn, now).await?;
        }
    }
    let n = sqlx::query("DELETE FROM calendar_connections WHERE id = ANY($1::text[])")
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(error)?
        .rows_affected();
    tx.commit().await.map_err(error)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Connections whose sync is due, soonest first; those waiting for their user to reconnect
/// are not synced in the background.
pub(crate) async fn due(db: &PgPool, now: Timestamp, limit: usize) -> StoreResult<Vec<(Tenant, CalendarConnection)>> {
    #[derive(sqlx::FromRow)]
    struct DueRow {
        #[sqlx(flatten)]
        connection: ConnectionRow,
        account_id: String,
        mode: String,
    }
    let rows = sqlx::query_as::<_, DueRow>(concat!(
        "SELECT ",
        connection_columns!(),
        ", account_id, mode FROM calendar_connections
          WHERE next_sync_at <= $1 AND status <> 'needs_reauth' ORDER BY next_sync_at LIMIT $2"
    ))
    .bind(ms(now))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db)
    .await
    .map_err(error)?;
    rows.into_iter().map(|r| Ok((tenant_of(r.account_id, &r.mode)?, r.connection.into_record()?))).collect()
}
