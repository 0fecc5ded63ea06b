//! Accounts and keys, users, businesses and their hosts, and busy blocks.
//!
//! Edits read the current row `FOR UPDATE` inside their transaction, so two nodes editing one
//! record at once apply one edit after the other instead of undoing each other.

use jiff::Timestamp;
use kairos_core::{Business, User};
use kairos_store::*;
use sqlx::{PgConnection, PgPool};

use crate::bookings::MAX_BLOCK;
use crate::db::{error, unique};
use crate::rows::{BUSINESS_COLUMNS, BusinessRow, USER_COLUMNS, UserRow, json, ms, ts};

pub(crate) async fn create_api_key(
    db: &PgPool,
    account_name: &str,
    mode: Mode,
    key: &keys::HashedKey,
    now: Timestamp,
) -> StoreResult<Account> {
    // One account per name, whichever node creates it first: the no-op update makes the
    // existing row come back from RETURNING.
    let (id, created_at): (String, i64) = sqlx::query_as(
        "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET name = excluded.name
         RETURNING id, created_at",
    )
    .bind(ids::new_id("acct"))
    .bind(account_name)
    .bind(ms(now))
    .fetch_one(db)
    .await
    .map_err(error)?;
    sqlx::query(
        "INSERT INTO api_keys (id, account_id, mode, key_hash, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ids::new_id("key"))
    .bind(&id)
    .bind(mode.as_str())
    .bind(&key.hash)
    .bind(&key.prefix)
    .bind(ms(now))
    .execute(db)
    .await
    .map_err(unique("key"))?;
    Ok(Account { id, name: account_name.to_string(), created_at: ts(created_at)? })
}

pub(crate) async fn tenant_for_key(db: &PgPool, key_hash: &str) -> StoreResult<Option<Tenant>> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT account_id, mode FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(key_hash)
            .fetch_optional(db)
            .await
            .map_err(error)?;
    Ok(row.and_then(|(account_id, mode)| Mode::parse(&mode).map(|mode| Tenant { account_id, mode })))
}

pub(crate) async fn insert_user(db: &PgPool, t: &Tenant, user: &User) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO users (id, account_id, mode, email, name, timezone, working_hours, date_overrides, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&user.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&user.email)
    .bind(&user.name)
    .bind(user.schedule.timezone.name())
    .bind(json(&user.schedule.working_hours))
    .bind(json(&user.schedule.date_overrides))
    .bind(ms(user.created_at))
    .bind(ms(user.updated_at))
    .execute(db)
    .await
    .map_err(unique("email"))?;
    Ok(())
}

pub(crate) async fn user(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<Option<User>> {
    let sql = users_where("WHERE id = $1 AND account_id = $2 AND mode = $3");
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .fetch_optional(db)
        .await
        .map_err(error)?;
    row.map(UserRow::into_user).transpose()
}

fn users_where(rest: &str) -> String {
    format!("SELECT {USER_COLUMNS} FROM users {rest}")
}

pub(crate) async fn users(db: &PgPool, t: &Tenant, page: &PageRequest) -> StoreResult<Page<User>> {
    let sql =
        users_where("WHERE account_id = $1 AND mode = $2 AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4");
    let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(&page.cursor)
        .bind(page.limit as i64 + 1)
        .fetch_all(db)
        .await
        .map_err(error)?;
    let users = rows.into_iter().map(UserRow::into_user).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(users, page.limit, |u| &u.id))
}

pub(crate) async fn update_user(db: &PgPool, t: &Tenant, id: &str, edit: Edit<User>) -> StoreResult<User> {
    let mut tx = db.begin().await.map_err(error)?;
    let sql = users_where("WHERE id = $1 AND account_id = $2 AND mode = $3 FOR UPDATE");
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(error)?;
    let mut user = row.ok_or(StoreError::NotFound)?.into_user()?;
    edit(&mut user)?;
    user.id = id.to_string();
    sqlx::query(
        "UPDATE users SET email = $1, name = $2, timezone = $3, working_hours = $4, date_overrides = $5, updated_at = $6
         WHERE id = $7 AND account_id = $8 AND mode = $9",
    )
    .bind(&user.email)
    .bind(&user.name)
    .bind(user.schedule.timezone.name())
    .bind(json(&user.schedule.working_hours))
    .bind(json(&user.schedule.date_overrides))
    .bind(ms(user.updated_at))
    .bind(&user.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(&mut *tx)
    .await
    .map_err(unique("email"))?;
    tx.commit().await.map_err(error)?;
    Ok(user)
}

pub(crate) async fn delete_user(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<bool> {
    // Host entries and busy blocks go with the user (ON DELETE CASCADE); bookings keep the
    // participant's email and name.
    let done = sqlx::query("DELETE FROM users WHERE id = $1 AND account_id = $2 AND mode = $3")
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .execute(db)
        .await
        .map_err(error)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn resolve_users(db: &PgPool, t: &Tenant, refs: &[UserRef]) -> StoreResult<Vec<Option<User>>> {
    resolve_users_on(&mut *db.acquire().await.map_err(error)?, t, refs).await
}

/// [`resolve_users`] on a given connection (the booking transaction's), in one statement.
pub(crate) async fn resolve_users_on(
    c: &mut PgConnection,
    t: &Tenant,
    refs: &[UserRef],
) -> StoreResult<Vec<Option<User>>> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let (mut by_id, mut by_email) = (Vec::new(), Vec::new());
    for r in refs {
        match r {
            UserRef::Id(id) => by_id.push(id.clone()),
            UserRef::Email(email) => by_email.push(email.clone()),
        }
    }
    let sql = users_where("WHERE account_id = $1 AND mode = $2 AND (id = ANY($3::text[]) OR email = ANY($4::text[]))");
    let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(&by_id)
        .bind(&by_email)
        .fetch_all(c)
        .await
        .map_err(error)?;
    let found = rows.into_iter().map(UserRow::into_user).collect::<StoreResult<Vec<_>>>()?;
    Ok(refs
        .iter()
        .map(|r| {
            found
                .iter()
                .find(|u| match r {
                    UserRef::Id(id) => &u.id == id,
                    UserRef::Email(email) => &u.email == email,
                })
                .cloned()
        })
        .collect())
}

pub(crate) async fn insert_business(db: &PgPool, t: &Tenant, business: &Business) -> StoreResult<()> {
    let b = business;
    let mut tx = db.begin().await.map_err(error)?;
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
    .bind(b.schedule.timezone.name())
    .bind(json(&b.schedule.working_hours))
    .bind(json(&b.schedule.date_overrides))
    .bind(i64::from(b.buffer_before_minutes))
    .bind(i64::from(b.buffer_after_minutes))
    .bind(i64::from(b.minimum_notice_minutes))
    .bind(b.max_bookings_per_day.map(i64::from))
    .bind(b.slot_step_minutes.map(i64::from))
    .bind(b.price_amount)
    .bind(&b.price_currency)
    .bind(ms(b.created_at))
    .bind(ms(b.updated_at))
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    set_hosts(&mut tx, t, &b.id, &b.hosts).await?;
    tx.commit().await.map_err(error)?;
    Ok(())
}

/// Replaces a business's hosts in one statement; every host must be a user of the same
/// tenant (`NotFound` otherwise).
async fn set_hosts(c: &mut PgConnection, t: &Tenant, business_id: &str, hosts: &[String]) -> StoreResult<()> {
    // Lock the hosts before touching their host rows, in id order: deleting a user locks the
    // user, then its host rows through the cascade, so the same order here cannot deadlock.
    sqlx::query("SELECT 1 FROM users WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE")
        .bind(hosts)
        .execute(&mut *c)
        .await
        .map_err(error)?;
    sqlx::query("DELETE FROM business_hosts WHERE business_id = $1")
        .bind(business_id)
        .execute(&mut *c)
        .await
        .map_err(error)?;
    if hosts.is_empty() {
        return Ok(());
    }
    let added = sqlx::query(
        "INSERT INTO business_hosts (business_id, user_id, position)
         SELECT $1, u.id, h.position - 1
           FROM UNNEST($2::text[]) WITH ORDINALITY AS h(user_id, position)
           JOIN users u ON u.id = h.user_id AND u.account_id = $3 AND u.mode = $4",
    )
    .bind(business_id)
    .bind(hosts)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .execute(&mut *c)
    .await
    .map_err(unique("hosts"))?;
    if added.rows_affected() != hosts.len() as u64 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn business(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<Option<Business>> {
    business_on(&mut *db.acquire().await.map_err(error)?, t, id, false).await
}

/// A business with its hosts, on a given connection; `lock` locks its row first (`FOR
/// UPDATE`), then reads it.
///
/// Two statements on purpose: under READ COMMITTED, a `SELECT … FOR UPDATE` that waited for
/// another writer re-reads the locked row but evaluates its subqueries (the hosts) on the
/// snapshot taken before the wait — an edit would then write the other writer's hosts back
/// over. The read after the lock gets a fresh snapshot that includes them.
pub(crate) async fn business_on(
    c: &mut PgConnection,
    t: &Tenant,
    id: &str,
    lock: bool,
) -> StoreResult<Option<Business>> {
    if lock {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM businesses WHERE id = $1 AND account_id = $2 AND mode = $3 FOR UPDATE")
                .bind(id)
                .bind(&t.account_id)
                .bind(t.mode.as_str())
                .fetch_optional(&mut *c)
                .await
                .map_err(error)?;
        if found.is_none() {
            return Ok(None);
        }
    }
    let sql = format!("SELECT {BUSINESS_COLUMNS} FROM businesses WHERE id = $1 AND account_id = $2 AND mode = $3");
    let row: Option<BusinessRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .fetch_optional(c)
        .await
        .map_err(error)?;
    row.map(BusinessRow::into_business).transpose()
}

pub(crate) async fn businesses(db: &PgPool, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Business>> {
    let sql = format!(
        "SELECT {BUSINESS_COLUMNS} FROM businesses
          WHERE account_id = $1 AND mode = $2 AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    );
    let rows: Vec<BusinessRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .bind(&page.cursor)
        .bind(page.limit as i64 + 1)
        .fetch_all(db)
        .await
        .map_err(error)?;
    let out = rows.into_iter().map(BusinessRow::into_business).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(out, page.limit, |b| &b.id))
}

pub(crate) async fn update_business(db: &PgPool, t: &Tenant, id: &str, edit: Edit<Business>) -> StoreResult<Business> {
    let mut tx = db.begin().await.map_err(error)?;
    let mut b = business_on(&mut tx, t, id, true).await?.ok_or(StoreError::NotFound)?;
    edit(&mut b)?;
    b.id = id.to_string();
    sqlx::query(
        "UPDATE businesses SET name = $1, timezone = $2, working_hours = $3, date_overrides = $4, buffer_before_minutes = $5,
            buffer_after_minutes = $6, minimum_notice_minutes = $7, max_bookings_per_day = $8, slot_step_minutes = $9,
            price_amount = $10, price_currency = $11, updated_at = $12
         WHERE id = $13 AND account_id = $14 AND mode = $15",
    )
    .bind(&b.name)
    .bind(b.schedule.timezone.name())
    .bind(json(&b.schedule.working_hours))
    .bind(json(&b.schedule.date_overrides))
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
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    set_hosts(&mut tx, t, &b.id, &b.hosts).await.map_err(|e| match e {
        // The business exists (it was just read): a missing row is a host.
        StoreError::NotFound => StoreError::Invalid {
            param: "hosts".into(),
            message: "A host no longer exists; check the hosts and retry.".into(),
            missing: false,
        },
        other => other,
    })?;
    tx.commit().await.map_err(error)?;
    Ok(b)
}

pub(crate) async fn delete_business(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM businesses WHERE id = $1 AND account_id = $2 AND mode = $3")
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .execute(db)
        .await
        .map_err(error)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn add_busy_blocks(
    db: &PgPool,
    t: &Tenant,
    user_id: &str,
    blocks: &[NewBusyBlock],
) -> StoreResult<()> {
    if user(db, t, user_id).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    // Long blocks go in as pieces of at most MAX_BLOCK, which bounds overlap queries.
    let (mut sources, mut starts, mut ends) = (Vec::new(), Vec::new(), Vec::new());
    for block in blocks {
        let mut start = block.interval.start();
        while start < block.interval.end() {
            let end = block.interval.end().min(start + MAX_BLOCK);
            sources.push(block.source.clone());
            starts.push(ms(start));
            ends.push(ms(end));
            start = end;
        }
    }
    if sources.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO busy_blocks (account_id, mode, user_id, source, start_at, end_at)
         SELECT $1, $2, $3, b.source, b.start_at, b.end_at
           FROM UNNEST($4::text[], $5::bigint[], $6::bigint[]) AS b(source, start_at, end_at)",
    )
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(user_id)
    .bind(&sources)
    .bind(&starts)
    .bind(&ends)
    .execute(db)
    .await
    .map_err(error)?;
    Ok(())
}
