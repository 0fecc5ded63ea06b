//! Accounts and keys, users, businesses and their hosts, and busy blocks.

use jiff::Timestamp;
use kairos_core::{Business, User};
use kairos_store::{
    Account, Mode, NewBusyBlock, Page, PageRequest, StoreError, StoreResult, Tenant, UserRef, ids, keys,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::bookings::MAX_BLOCK;
use crate::db::{error, unique};
use crate::rows::{BUSINESS_COLUMNS, BusinessRow, USER_COLUMNS, UserRow, json, ms, ts};

pub(crate) fn create_api_key(
    c: &Connection,
    name: &str,
    mode: Mode,
    key: &keys::HashedKey,
    now: Timestamp,
) -> StoreResult<Account> {
    c.prepare_cached("INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING")
        .and_then(|mut s| s.execute(params![ids::new_id("acct"), name, ms(now)]))
        .map_err(error)?;
    let (id, created_at): (String, i64) = c
        .prepare_cached("SELECT id, created_at FROM accounts WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(error)?;
    c.prepare_cached(
        "INSERT INTO api_keys (id, account_id, mode, key_hash, key_prefix, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![ids::new_id("key"), id, mode.as_str(), key.hash, key.prefix, ms(now)]))
    .map_err(unique("key"))?;
    Ok(Account { id, name: name.to_string(), created_at: ts(created_at)? })
}

pub(crate) fn tenant_for_key(c: &Connection, key_hash: &str) -> StoreResult<Option<Tenant>> {
    let row: Option<(String, String)> = c
        .prepare_cached("SELECT account_id, mode FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL")
        .and_then(|mut s| s.query_row([key_hash], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(error)?;
    Ok(row.and_then(|(account_id, mode)| Mode::parse(&mode).map(|mode| Tenant { account_id, mode })))
}

pub(crate) fn insert_user(c: &Connection, t: &Tenant, u: &User) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO users (id, account_id, mode, email, name, timezone, working_hours, date_overrides, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            u.id,
            t.account_id,
            t.mode.as_str(),
            u.email,
            u.name,
            u.schedule.timezone.name(),
            json(&u.schedule.working_hours),
            json(&u.schedule.date_overrides),
            ms(u.created_at),
            ms(u.updated_at)
        ])
    })
    .map_err(unique("email"))?;
    Ok(())
}

fn one_user(c: &Connection, sql: &str, key: &str, t: &Tenant) -> StoreResult<Option<User>> {
    let row = c
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params![key, t.account_id, t.mode.as_str()], |r| UserRow::read(r, 0)).optional())
        .map_err(error)?;
    row.map(UserRow::into_user).transpose()
}

pub(crate) fn user(c: &Connection, t: &Tenant, id: &str) -> StoreResult<Option<User>> {
    one_user(c, &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1 AND account_id = ?2 AND mode = ?3"), id, t)
}

pub(crate) fn user_by_email(c: &Connection, t: &Tenant, email: &str) -> StoreResult<Option<User>> {
    one_user(
        c,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1 AND account_id = ?2 AND mode = ?3"),
        email,
        t,
    )
}

pub(crate) fn users(c: &Connection, t: &Tenant, page: &PageRequest) -> StoreResult<Page<User>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE account_id = ?1 AND mode = ?2 AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
    );
    let rows = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params![t.account_id, t.mode.as_str(), page.cursor, page.limit as i64 + 1], |r| {
                UserRow::read(r, 0)
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    let users = rows.into_iter().map(UserRow::into_user).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(users, page.limit, |u| &u.id))
}

pub(crate) fn update_user(c: &Connection, t: &Tenant, u: &User) -> StoreResult<()> {
    let changed = c
        .prepare_cached(
            "UPDATE users SET email = ?1, name = ?2, timezone = ?3, working_hours = ?4, date_overrides = ?5, updated_at = ?6
             WHERE id = ?7 AND account_id = ?8 AND mode = ?9",
        )
        .and_then(|mut s| {
            s.execute(params![
                u.email,
                u.name,
                u.schedule.timezone.name(),
                json(&u.schedule.working_hours),
                json(&u.schedule.date_overrides),
                ms(u.updated_at),
                u.id,
                t.account_id,
                t.mode.as_str()
            ])
        })
        .map_err(unique("email"))?;
    if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

pub(crate) fn delete_user(c: &Connection, t: &Tenant, id: &str) -> StoreResult<bool> {
    // Host entries and busy blocks go with the user (ON DELETE CASCADE); bookings keep the
    // participant's email and name.
    let changed = c
        .prepare_cached("DELETE FROM users WHERE id = ?1 AND account_id = ?2 AND mode = ?3")
        .and_then(|mut s| s.execute(params![id, t.account_id, t.mode.as_str()]))
        .map_err(error)?;
    Ok(changed > 0)
}

pub(crate) fn resolve_users(c: &Connection, t: &Tenant, refs: &[UserRef]) -> StoreResult<Vec<Option<User>>> {
    refs.iter()
        .map(|r| match r {
            UserRef::Id(id) => user(c, t, id),
            UserRef::Email(email) => user_by_email(c, t, email),
        })
        .collect()
}

pub(crate) fn insert_business(c: &Connection, t: &Tenant, b: &Business) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO businesses (id, account_id, mode, name, timezone, working_hours, date_overrides, buffer_before_minutes,
            buffer_after_minutes, minimum_notice_minutes, max_bookings_per_day, slot_step_minutes, price_amount, price_currency,
            created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )
    .and_then(|mut s| {
        s.execute(params![
            b.id,
            t.account_id,
            t.mode.as_str(),
            b.name,
            b.schedule.timezone.name(),
            json(&b.schedule.working_hours),
            json(&b.schedule.date_overrides),
            b.buffer_before_minutes,
            b.buffer_after_minutes,
            b.minimum_notice_minutes,
            b.max_bookings_per_day,
            b.slot_step_minutes,
            b.price_amount,
            b.price_currency,
            ms(b.created_at),
            ms(b.updated_at)
        ])
    })
    .map_err(error)?;
    set_hosts(c, t, &b.id, &b.hosts)
}

/// A business's hosts in order, as a JSON array, selected alongside its row.
const HOSTS_JSON: &str = "(SELECT json_group_array(user_id) FROM
    (SELECT user_id FROM business_hosts WHERE business_id = businesses.id ORDER BY position))";

fn parse_hosts(json: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(json).map_err(|e| crate::rows::corrupt("hosts", e))
}

/// Replaces a business's hosts; every host must be a user of the same tenant.
fn set_hosts(c: &Connection, t: &Tenant, business_id: &str, hosts: &[String]) -> StoreResult<()> {
    c.prepare_cached("DELETE FROM business_hosts WHERE business_id = ?1")
        .and_then(|mut s| s.execute([business_id]))
        .map_err(error)?;
    for (position, host) in hosts.iter().enumerate() {
        let added = c
            .prepare_cached(
                "INSERT INTO business_hosts (business_id, user_id, position)
                 SELECT ?1, id, ?2 FROM users WHERE id = ?3 AND account_id = ?4 AND mode = ?5",
            )
            .and_then(|mut s| s.execute(params![business_id, position as i64, host, t.account_id, t.mode.as_str()]))
            .map_err(unique("hosts"))?;
        if added == 0 {
            return Err(StoreError::NotFound);
        }
    }
    Ok(())
}

pub(crate) fn hosts_of(c: &Connection, business_id: &str) -> StoreResult<Vec<String>> {
    c.prepare_cached("SELECT user_id FROM business_hosts WHERE business_id = ?1 ORDER BY position")
        .and_then(|mut s| s.query_map([business_id], |r| r.get(0))?.collect())
        .map_err(error)
}

pub(crate) fn business(c: &Connection, t: &Tenant, id: &str) -> StoreResult<Option<Business>> {
    // The hosts come along as a JSON array: one statement on the booking path, not two.
    let sql = format!(
        "SELECT {BUSINESS_COLUMNS}, {HOSTS_JSON} FROM businesses WHERE id = ?1 AND account_id = ?2 AND mode = ?3"
    );
    let row = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params![id, t.account_id, t.mode.as_str()], |r| {
                Ok((BusinessRow::read(r, 0)?, r.get::<_, String>(14)?))
            })
            .optional()
        })
        .map_err(error)?;
    match row {
        None => Ok(None),
        Some((row, hosts)) => row.into_business(parse_hosts(&hosts)?).map(Some),
    }
}

pub(crate) fn businesses(c: &Connection, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Business>> {
    let sql = format!(
        "SELECT {BUSINESS_COLUMNS}, {HOSTS_JSON} FROM businesses
          WHERE account_id = ?1 AND mode = ?2 AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
    );
    let rows = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params![t.account_id, t.mode.as_str(), page.cursor, page.limit as i64 + 1], |r| {
                Ok((BusinessRow::read(r, 0)?, r.get::<_, String>(14)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(error)?;
    let out = rows
        .into_iter()
        .map(|(row, hosts)| row.into_business(parse_hosts(&hosts)?))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(out, page.limit, |b| &b.id))
}

pub(crate) fn update_business(c: &Connection, t: &Tenant, b: &Business) -> StoreResult<()> {
    let changed = c
        .prepare_cached(
            "UPDATE businesses SET name = ?1, timezone = ?2, working_hours = ?3, date_overrides = ?4, buffer_before_minutes = ?5,
                buffer_after_minutes = ?6, minimum_notice_minutes = ?7, max_bookings_per_day = ?8, slot_step_minutes = ?9,
                price_amount = ?10, price_currency = ?11, updated_at = ?12
             WHERE id = ?13 AND account_id = ?14 AND mode = ?15",
        )
        .and_then(|mut s| {
            s.execute(params![
                b.name,
                b.schedule.timezone.name(),
                json(&b.schedule.working_hours),
                json(&b.schedule.date_overrides),
                b.buffer_before_minutes,
                b.buffer_after_minutes,
                b.minimum_notice_minutes,
                b.max_bookings_per_day,
                b.slot_step_minutes,
                b.price_amount,
                b.price_currency,
                ms(b.updated_at),
                b.id,
                t.account_id,
                t.mode.as_str()
            ])
        })
        .map_err(error)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    set_hosts(c, t, &b.id, &b.hosts)
}

pub(crate) fn delete_business(c: &Connection, t: &Tenant, id: &str) -> StoreResult<bool> {
    let changed = c
        .prepare_cached("DELETE FROM businesses WHERE id = ?1 AND account_id = ?2 AND mode = ?3")
        .and_then(|mut s| s.execute(params![id, t.account_id, t.mode.as_str()]))
        .map_err(error)?;
    Ok(changed > 0)
}

pub(crate) fn add_busy_blocks(c: &Connection, t: &Tenant, user_id: &str, blocks: &[NewBusyBlock]) -> StoreResult<()> {
    if user(c, t, user_id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    let mut insert = c
        .prepare_cached("INSERT INTO busy_blocks (account_id, mode, user_id, source, start_at, end_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .map_err(error)?;
    for block in blocks {
        // Long blocks go in as pieces of at most MAX_BLOCK, which bounds overlap queries.
        let mut start = block.interval.start();
        while start < block.interval.end() {
            let end = block.interval.end().min(start + MAX_BLOCK);
            insert
                .execute(params![t.account_id, t.mode.as_str(), user_id, block.source, ms(start), ms(end)])
                .map_err(error)?;
            start = end;
        }
    }
    Ok(())
}
