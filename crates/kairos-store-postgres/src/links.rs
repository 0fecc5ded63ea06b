//! Booking links: their pages are public, so a slug is unique across tenants and a page finds
//! its tenant through it.

use kairos_core::Link;
use kairos_store::{Page, PageRequest, StoreError, StoreResult, Tenant};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use crate::calendars::tenant_of;
use crate::db::{error, unique};
use crate::rows::{corrupt, ms, ts};

macro_rules! link_columns {
    () => {
        "id, slug, title, business_id, participants, duration_minutes, created_at, updated_at, account_id, mode"
    };
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: String,
    slug: String,
    title: String,
    business_id: Option<String>,
    participants: Json<Vec<String>>,
    duration_minutes: i32,
    created_at: i64,
    updated_at: i64,
    account_id: String,
    mode: String,
}

impl LinkRow {
    fn into_record(self) -> StoreResult<(Tenant, Link)> {
        let link = Link {
            id: self.id,
            slug: self.slug,
            title: self.title,
            business_id: self.business_id,
            participants: self.participants.0,
            duration_minutes: u32::try_from(self.duration_minutes).map_err(|e| corrupt("link duration", e))?,
            created_at: ts(self.created_at)?,
            updated_at: ts(self.updated_at)?,
        };
        Ok((tenant_of(self.account_id, &self.mode)?, link))
    }
}

pub(crate) async fn insert(db: &PgPool, t: &Tenant, l: &Link) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO links (id, account_id, mode, slug, title, business_id, participants, duration_minutes, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&l.id)
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&l.slug)
    .bind(&l.title)
    .bind(&l.business_id)
    .bind(Json(&l.participants))
    .bind(i32::try_from(l.duration_minutes).unwrap_or(i32::MAX))
    .bind(ms(l.created_at))
    .bind(ms(l.updated_at))
    .execute(db)
    .await
    .map_err(unique("slug"))?;
    Ok(())
}

async fn get_on(c: &mut PgConnection, t: &Tenant, id: &str, lock: bool) -> StoreResult<Option<Link>> {
    let sql = format!(
        "SELECT {} FROM links WHERE id = $1 AND account_id = $2 AND mode = $3{}",
        link_columns!(),
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<LinkRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .fetch_optional(c)
        .await
        .map_err(error)?;
    row.map(|r| r.into_record().map(|(_, l)| l)).transpose()
}

pub(crate) async fn get(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<Option<Link>> {
    get_on(&mut *db.acquire().await.map_err(error)?, t, id, false).await
}

pub(crate) async fn list(db: &PgPool, t: &Tenant, page: &PageRequest) -> StoreResult<Page<Link>> {
    let rows: Vec<LinkRow> = sqlx::query_as(concat!(
        "SELECT ",
        link_columns!(),
        " FROM links WHERE account_id = $1 AND mode = $2 AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .bind(&t.account_id)
    .bind(t.mode.as_str())
    .bind(&page.cursor)
    .bind(page.limit as i64 + 1)
    .fetch_all(db)
    .await
    .map_err(error)?;
    let links = rows.into_iter().map(|r| r.into_record().map(|(_, l)| l)).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page::from_rows(links, page.limit, |l| &l.id))
}

/// Applies `edit` to the link as it is in the transaction (locked), then stores it.
pub(crate) async fn update(db: &PgPool, t: &Tenant, id: &str, edit: kairos_store::Edit<Link>) -> StoreResult<Link> {
    let mut tx = db.begin().await.map_err(error)?;
    let mut link = get_on(&mut tx, t, id, true).await?.ok_or(StoreError::NotFound)?;
    edit(&mut link)?;
    link.id = id.to_string();
    sqlx::query(
        "UPDATE links SET slug = $1, title = $2, business_id = $3, participants = $4, duration_minutes = $5,
                updated_at = $6
          WHERE id = $7",
    )
    .bind(&link.slug)
    .bind(&link.title)
    .bind(&link.business_id)
    .bind(Json(&link.participants))
    .bind(i32::try_from(link.duration_minutes).unwrap_or(i32::MAX))
    .bind(ms(link.updated_at))
    .bind(&link.id)
    .execute(&mut *tx)
    .await
    .map_err(unique("slug"))?;
    tx.commit().await.map_err(error)?;
    Ok(link)
}

pub(crate) async fn delete(db: &PgPool, t: &Tenant, id: &str) -> StoreResult<bool> {
    let n = sqlx::query("DELETE FROM links WHERE id = $1 AND account_id = $2 AND mode = $3")
        .bind(id)
        .bind(&t.account_id)
        .bind(t.mode.as_str())
        .execute(db)
        .await
        .map_err(error)?
        .rows_affected();
    Ok(n > 0)
}

pub(crate) async fn by_slug(db: &PgPool, slug: &str) -> StoreResult<Option<(Tenant, Link)>> {
    let row: Option<LinkRow> = sqlx::query_as(concat!("SELECT ", link_columns!(), " FROM links WHERE slug = $1"))
        .bind(slug)
        .fetch_optional(db)
        .await
        .map_err(error)?;
    row.map(LinkRow::into_record).transpose()
}
