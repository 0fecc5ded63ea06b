//! Accounts and keys, users, businesses and their hosts, and busy blocks.

use jiff::Timestamp;
use kairos_core::{Business, User};
use kairos_store::{Account, NewBusyBlock, Page, PageRequest, StoreError, StoreResult, Tenant, UserRef, ids, keys};
use sqlx::{SqliteConnection, SqlitePool};

use crate::rows::{BusinessRow, UserRow, json, ms, ts};
use crate::{backend, unique};

pub(crate) async fn create_api_key(
    conn: &mut SqliteConnection,
    name: &str,
    mode: kairos_store::Mode,
    key: &keys::HashedKey,
    now: Timestamp,
) -> StoreResult<Account> {
    sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(ids::new_id("acct"))
        .bind(name)
        .bind(ms(now))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    let (id, created_at): (String, i64) = sqlx::query_as("SELECT id, created_at FROM accounts WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query(
        "INSERT INTO api_keys (id, account_id, mode, key_hash, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ids::new_id("key"))
    .bind(&id)
    .bind(mode.as_str())
    .bind(&key.hash)
    .bind(&key.prefix)
    .bind(ms(now))
    .execute(&mut *conn)
    .await
    .map_err(unique("key"))?;
    Ok(Account { id, name: name.to_string(), created_at: ts(created_at)? })
}

pub(crate) async fn tenant_for_key(pool: &SqlitePool, key_hash: &str) -> StoreResult<Option<Tenant>> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT account_id, mode FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(key_hash)
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
    Ok(row.and_then(|(account_id, mode)| kairos_store::Mode::parse(&mode).map(|mode| Tenant { account_id, mode })))
}

const USER_COLUMNS: &str = "id, email, name, timezone, working_hours, date_overrides, created_at, updated_at";

pub(crate) async fn insert_user(conn: &mut SqliteConnection, t: &Tenant, u: &User) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO users (id, account_id, mode, email, name, timezone, working_hours, date_overrides, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&u.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&u.email)
    .bind(&u.name)
    .bind(u.timezone.name())
    .bind(json(&u.working_hours))
    .bind(json(&u.date_overrides))
    .bind(ms(u.created_at))
    .bind(ms(u.updated_at))
    .execute(conn)
    .await
    .map_err(unique("email"))?;
    Ok(())
}

pub(crate) async fn user(conn: &mut SqliteConnection, t: &Tenant, id: &str) -> StoreResult<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND account_id = $2 AND mode = $3"
    )))
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(UserRow::into_user).transpose()
}

async fn user_by_email(conn: &mut SqliteConnection, t: &Tenant, email: &str) -> StoreResult<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1 AND account_id = $2 AND mode = $3"
    )))
    .bind(email)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(UserRow::into_user).transpose()
}

pub(crate) async fn users(pool: &SqlitePool, t: &Tenant, page: &PageRequest) -> StoreResult<Page<User>> {
    let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE account_id = $1 AND mode = $2 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    )))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&page.cursor)
    .bind(page.limit as i64 + 1)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let users = rows.into_iter().map(UserRow::into_user).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(users, page.limit, |u| &u.id))
}

pub(crate) async fn update_user(conn: &mut SqliteConnection, t: &Tenant, u: &User) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE users SET email = $1, name = $2, timezone = $3, working_hours = $4, date_overrides = $5, updated_at = $6
         WHERE id = $7 AND account_id = $8 AND mode = $9",
    )
    .bind(&u.email)
    .bind(&u.name)
    .bind(u.timezone.name())
    .bind(json(&u.working_hours))
    .bind(json(&u.date_overrides))
    .bind(ms(u.updated_at))
    .bind(&u.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(conn)
    .await
    .map_err(unique("email"))?;
    if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

pub(crate) async fn delete_user(conn: &mut SqliteConnection, t: &Tenant, id: &str) -> StoreResult<bool> {
    // Hosts and busy blocks go with the user (ON DELETE CASCADE); past bookings keep the
    // participant's email and name.
    let done = sqlx::query("DELETE FROM users WHERE id = $1 AND account_id = $2 AND mode = $3")
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn resolve_users(
    conn: &mut SqliteConnection,
    t: &Tenant,
    refs: &[UserRef],
) -> StoreResult<Vec<Option<User>>> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        out.push(match r {
            UserRef::Id(id) => user(conn, t, id).await?,
            UserRef::Email(email) => user_by_email(conn, t, email).await?,
        });
    }
    Ok(out)
}

const BUSINESS_COLUMNS: &str = "id, name, timezone, working_hours, date_overrides, buffer_before_minutes, buffer_after_minutes, \
    minimum_notice_minutes, max_bookings_per_day, slot_step_minutes, price_amount, price_currency, created_at, updated_at";

pub(crate) async fn insert_business(conn: &mut SqliteConnection, t: &Tenant, b: &Business) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO businesses (id, account_id, mode, name, timezone, working_hours, date_overrides, buffer_before_minutes,
            buffer_after_minutes, minimum_notice_minutes, max_bookings_per_day, slot_step_minutes, price_amount, price_currency,
            created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&b.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&b.name)
    .bind(b.timezone.name())
    .bind(json(&b.working_hours))
    .bind(json(&b.date_overrides))
    .bind(i64::from(b.buffer_before_minutes))
    .bind(i64::from(b.buffer_after_minutes))
    .bind(i64::from(b.minimum_notice_minutes))
    .bind(b.max_bookings_per_day.map(i64::from))
    .bind(b.slot_step_minutes.map(i64::from))
    .bind(b.price_amount)
    .bind(&b.price_currency)
    .bind(ms(b.created_at))
    .bind(ms(b.updated_at))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    set_hosts(conn, t, &b.id, &b.hosts).await
}

/// Replaces a business's hosts; every host must be a user of the same tenant.
async fn set_hosts(conn: &mut SqliteConnection, t: &Tenant, business_id: &str, hosts: &[String]) -> StoreResult<()> {
    sqlx::query("DELETE FROM business_hosts WHERE business_id = $1")
        .bind(business_id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    for (position, host) in hosts.iter().enumerate() {
        let done = sqlx::query(
            "INSERT INTO business_hosts (business_id, user_id, position)
             SELECT $1, id, $2 FROM users WHERE id = $3 AND account_id = $4 AND mode = $5",
        )
        .bind(business_id)
        .bind(position as i64)
        .bind(host)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .execute(&mut *conn)
        .await
        .map_err(unique("hosts"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
    }
    Ok(())
}

async fn hosts_of(conn: &mut SqliteConnection, business_id: &str) -> StoreResult<Vec<String>> {
    sqlx::query_scalar("SELECT user_id FROM business_hosts WHERE business_id = $1 ORDER BY position")
        .bind(business_id)
        .fetch_all(conn)
        .await
        .map_err(backend)
}

pub(crate) async fn business(conn: &mut SqliteConnection, t: &Tenant, id: &str) -> StoreResult<Option<Business>> {
    let row: Option<BusinessRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {BUSINESS_COLUMNS} FROM businesses WHERE id = $1 AND account_id = $2 AND mode = $3"
    )))
    .bind(id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    match row {
        None => Ok(None),
        Some(row) => {
            let hosts = hosts_of(conn, &row.id).await?;
            row.into_business(hosts).map(Some)
        }
    }
}

pub(crate) async fn businesses(
    conn: &mut SqliteConnection,
    t: &Tenant,
    page: &PageRequest,
) -> StoreResult<Page<Business>> {
    let rows: Vec<BusinessRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {BUSINESS_COLUMNS} FROM businesses WHERE account_id = $1 AND mode = $2 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    )))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&page.cursor)
    .bind(page.limit as i64 + 1)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let hosts = hosts_of(conn, &row.id).await?;
        out.push(row.into_business(hosts)?);
    }
    Ok(Page::from_rows(out, page.limit, |b| &b.id))
}

pub(crate) async fn update_business(conn: &mut SqliteConnection, t: &Tenant, b: &Business) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE businesses SET name = $1, timezone = $2, working_hours = $3, date_overrides = $4, buffer_before_minutes = $5,
            buffer_after_minutes = $6, minimum_notice_minutes = $7, max_bookings_per_day = $8, slot_step_minutes = $9,
            price_amount = $10, price_currency = $11, updated_at = $12
         WHERE id = $13 AND account_id = $14 AND mode = $15",
    )
    .bind(&b.name)
    .bind(b.timezone.name())
    .bind(json(&b.working_hours))
    .bind(json(&b.date_overrides))
    .bind(i64::from(b.buffer_before_minutes))
    .bind(i64::from(b.buffer_after_minutes))
    .bind(i64::from(b.minimum_notice_minutes))
    .bind(b.max_bookings_per_day.map(i64::from))
    .bind(b.slot_step_minutes.map(i64::from))
    .bind(b.price_amount)
    .bind(&b.price_currency)
    .bind(ms(b.updated_at))
    .bind(&b.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    set_hosts(conn, t, &b.id, &b.hosts).await
}

pub(crate) async fn delete_business(conn: &mut SqliteConnection, t: &Tenant, id: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM businesses WHERE id = $1 AND account_id = $2 AND mode = $3")
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn add_busy_blocks(
    conn: &mut SqliteConnection,
    t: &Tenant,
    user_id: &str,
    blocks: &[NewBusyBlock],
) -> StoreResult<()> {
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 AND account_id = $2 AND mode = $3")
        .bind(user_id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    for block in blocks {
        sqlx::query("INSERT INTO busy_blocks (account_id, mode, user_id, source, start_at, end_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&t.account_id)
            .bind(t.mode.as_str())
            .bind(user_id)
            .bind(&block.source)
            .bind(ms(block.interval.start()))
            .bind(ms(block.interval.end()))
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}
