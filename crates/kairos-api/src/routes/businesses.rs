//! `/v1/businesses`: bookable things with their own hours, rules and hosts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kairos_core::schedule::{DateOverrides, Schedule, WorkingHours};
use kairos_core::{Business, Zone};
use kairos_store::{Edit, StoreError, Tenant, ids};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, on_object};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::wire::{self, Deleted, Pagination};

const MAX_BUFFER: u32 = kairos_core::booking::MAX_BUFFER_MINUTES;
const MAX_NOTICE: u32 = 365 * 24 * 60;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBusiness {
    #[schema(example = "Downtown Clinic")]
    pub name: String,
    #[schema(value_type = String, example = "America/New_York")]
    pub timezone: Zone,
    /// Defaults to Monday–Friday, 09:00–17:00.
    #[schema(value_type = Option<kairos_core::schedule::doc::WorkingHours>)]
    pub working_hours: Option<WorkingHours>,
    #[schema(value_type = Option<kairos_core::schedule::doc::DateOverrides>)]
    pub date_overrides: Option<DateOverrides>,
    pub buffer_before_minutes: Option<u32>,
    pub buffer_after_minutes: Option<u32>,
    pub minimum_notice_minutes: Option<u32>,
    pub max_bookings_per_day: Option<u32>,
    /// Distance between slot starts; the requested duration when absent.
    pub slot_step_minutes: Option<u32>,
    /// In the currency's smallest unit (cents); makes bookings `pending_payment`.
    pub price_amount: Option<i64>,
    #[schema(example = "usd")]
    pub price_currency: Option<String>,
    /// User ids or emails (`alice@example.com` or `user:alice@example.com`).
    pub hosts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBusiness {
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<Zone>>,
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<kairos_core::schedule::doc::WorkingHours>)]
    pub working_hours: Option<Option<WorkingHours>>,
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<kairos_core::schedule::doc::DateOverrides>)]
    pub date_overrides: Option<Option<DateOverrides>>,
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<u32>)]
    pub buffer_before_minutes: Option<Option<u32>>,
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<u32>)]
    pub buffer_after_minutes: Option<Option<u32>>,
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<u32>)]
    pub minimum_notice_minutes: Option<Option<u32>>,
    /// `null` removes the cap.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<u32>)]
    pub max_bookings_per_day: Option<Option<u32>>,
    /// `null` returns to the default (the duration).
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<u32>)]
    pub slot_step_minutes: Option<Option<u32>>,
    /// `null` (with `price_currency: null`) makes the business free.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<i64>)]
    pub price_amount: Option<Option<i64>>,
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<String>)]
    pub price_currency: Option<Option<String>>,
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub hosts: Option<Option<Vec<String>>>,
}

/// A page of businesses.
#[derive(Serialize, ToSchema)]
pub struct BusinessList {
    pub data: Vec<Business>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/businesses", tag = super::BUSINESSES, request_body = CreateBusiness,
    responses((status = 201, body = Business), (status = 404, body = ErrorBody, description = "A host does not exist"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<CreateBusiness>,
) -> Result<(StatusCode, Json<Business>), ApiError> {
    let now = state.clock.now();
    let mut business = Business {
        id: ids::new_id("biz"),
        name: String::new(),
        schedule: Schedule::new(
            body.timezone,
            body.working_hours.unwrap_or_else(WorkingHours::business_days_nine_to_five),
            body.date_overrides.unwrap_or_default(),
        ),
        buffer_before_minutes: wire::minutes_in(
            "buffer_before_minutes",
            body.buffer_before_minutes.unwrap_or(0),
            MAX_BUFFER,
        )?,
        buffer_after_minutes: wire::minutes_in(
            "buffer_after_minutes",
            body.buffer_after_minutes.unwrap_or(0),
            MAX_BUFFER,
        )?,
        minimum_notice_minutes: wire::minutes_in(
            "minimum_notice_minutes",
            body.minimum_notice_minutes.unwrap_or(0),
            MAX_NOTICE,
        )?,
        max_bookings_per_day: daily_max(body.max_bookings_per_day)?,
        slot_step_minutes: step(body.slot_step_minutes)?,
        price_amount: None,
        price_currency: None,
        hosts: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    business.name = name(Some(body.name))?;
    (business.price_amount, business.price_currency) = price(body.price_amount, body.price_currency)?;
    wire::check_overrides(&business.schedule)?;
    business.hosts = hosts(&state, &t, body.hosts.unwrap_or_default()).await?;
    state.store.insert_business(&t, &business).await.map_err(host_error)?;
    Ok((StatusCode::CREATED, Json(business)))
}

#[utoipa::path(get, path = "/v1/businesses/{id}", tag = super::BUSINESSES, params(("id" = String, Path)),
    responses((status = 200, body = Business), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<Business>, ApiError> {
    state.store.business(&t, &id).await?.map(Json).ok_or_else(|| ApiError::not_found("business", &id))
}

#[utoipa::path(get, path = "/v1/businesses", tag = super::BUSINESSES, params(Pagination), responses((status = 200, body = BusinessList)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(p): ApiQuery<Pagination>,
) -> Result<Json<kairos_store::Page<Business>>, ApiError> {
    Ok(Json(state.store.businesses(&t, &p.page()?).await?))
}

#[utoipa::path(patch, path = "/v1/businesses/{id}", tag = super::BUSINESSES, params(("id" = String, Path)), request_body = UpdateBusiness,
    responses((status = 200, body = Business), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBusiness>,
) -> Result<Json<Business>, ApiError> {
    // Validate what can be validated alone, then apply it to the current business inside the
    // write transaction (concurrent PATCHes do not undo each other).
    let name = body.name.map(name).transpose()?;
    let zone = wire::required("timezone", body.timezone)?;
    let hours = wire::required("working_hours", body.working_hours)?;
    let overrides = body.date_overrides;
    let minutes = |param: &str, value: Option<Option<u32>>, max: u32| {
        value.map(|m| wire::minutes_in(param, m.unwrap_or(0), max)).transpose()
    };
    let before = minutes("buffer_before_minutes", body.buffer_before_minutes, MAX_BUFFER)?;
    let after = minutes("buffer_after_minutes", body.buffer_after_minutes, MAX_BUFFER)?;
    let notice = minutes("minimum_notice_minutes", body.minimum_notice_minutes, MAX_NOTICE)?;
    let cap = body.max_bookings_per_day.map(daily_max).transpose()?;
    let grid = body.slot_step_minutes.map(step).transpose()?;
    let (amount, currency) = (body.price_amount, body.price_currency);
    let new_hosts = match body.hosts {
        Some(h) => Some(hosts(&state, &t, h.unwrap_or_default()).await?),
        None => None,
    };
    let now = state.clock.now();
    let edit: Edit<Business> = Box::new(move |b| {
        if let Some(name) = name {
            b.name = name;
        }
        if let Some(zone) = zone {
            b.schedule.timezone = zone;
        }
        if let Some(hours) = hours {
            b.schedule.working_hours = hours;
        }
        if let Some(overrides) = overrides {
            b.schedule.date_overrides = overrides.unwrap_or_default();
        }
        wire::check_overrides_in_edit(&b.schedule)?;
        b.buffer_before_minutes = before.unwrap_or(b.buffer_before_minutes);
        b.buffer_after_minutes = after.unwrap_or(b.buffer_after_minutes);
        b.minimum_notice_minutes = notice.unwrap_or(b.minimum_notice_minutes);
        b.max_bookings_per_day = cap.unwrap_or(b.max_bookings_per_day);
        b.slot_step_minutes = grid.unwrap_or(b.slot_step_minutes);
        if amount.is_some() || currency.is_some() {
            let amount = amount.unwrap_or(b.price_amount);
            let currency = currency.unwrap_or(b.price_currency.clone());
            (b.price_amount, b.price_currency) = price(amount, currency).map_err(ApiError::into_edit_refusal)?;
        }
        if let Some(hosts) = new_hosts {
            b.hosts = hosts;
        }
        b.updated_at = now;
        Ok(())
    });
    let b = state.store.update_business(&t, &id, edit).await.map_err(on_object("business", &id))?;
    Ok(Json(b))
}

#[utoipa::path(delete, path = "/v1/businesses/{id}", tag = super::BUSINESSES, params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    if state.store.delete_business(&t, &id).await? {
        Ok(Json(Deleted { id, deleted: true }))
    } else {
        Err(ApiError::not_found("business", &id))
    }
}

fn name(value: Option<String>) -> Result<String, ApiError> {
    wire::text("name", value, 200)?.ok_or_else(|| ApiError::invalid("name", "`name` must not be empty."))
}

fn daily_max(value: Option<u32>) -> Result<Option<u32>, ApiError> {
    match value {
        Some(0) | Some(10_001..) => Err(ApiError::invalid(
            "max_bookings_per_day",
            "`max_bookings_per_day` must be between 1 and 10000; use null for no cap.",
        )),
        other => Ok(other),
    }
}

fn step(value: Option<u32>) -> Result<Option<u32>, ApiError> {
    match value {
        Some(0) | Some(1441..) => {
            Err(ApiError::invalid("slot_step_minutes", "`slot_step_minutes` must be between 1 and 1440."))
        }
        other => Ok(other),
    }
}

fn price(amount: Option<i64>, currency: Option<String>) -> Result<(Option<i64>, Option<String>), ApiError> {
    match (amount, currency) {
        (None, None) => Ok((None, None)),
        (Some(a), Some(c)) => {
            if !(1..=99_999_999).contains(&a) {
                return Err(ApiError::invalid(
                    "price_amount",
                    "`price_amount` is in the smallest currency unit and must be between 1 and 99999999.",
                ));
            }
            let c = c.trim().to_ascii_lowercase();
            if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(ApiError::invalid(
                    "price_currency",
                    "`price_currency` must be a three-letter ISO 4217 code such as usd or eur.",
                ));
            }
            Ok((Some(a), Some(c)))
        }
        (Some(_), None) => {
            Err(ApiError::missing("price_currency", "`price_currency` is required with `price_amount`, e.g. \"usd\"."))
        }
        (None, Some(_)) => Err(ApiError::missing("price_amount", "`price_amount` is required with `price_currency`.")),
    }
}

/// Resolves host references to user ids, in order, without repeats.
async fn hosts(state: &AppState, t: &Tenant, refs: Vec<String>) -> Result<Vec<String>, ApiError> {
    if refs.len() > 100 {
        return Err(ApiError::invalid("hosts", "A business can have at most 100 hosts."));
    }
    let parsed = refs
        .iter()
        .enumerate()
        .map(|(i, r)| wire::user_ref(&format!("hosts[{i}]"), r))
        .collect::<Result<Vec<_>, _>>()?;
    let found = state.store.resolve_users(t, &parsed).await?;
    let mut ids: Vec<String> = Vec::with_capacity(found.len());
    for (i, user) in found.into_iter().enumerate() {
        let user = user.ok_or_else(|| {
            ApiError::missing_reference(
                format!("hosts[{i}]"),
                format!("No user matches `{}`; create it with POST /v1/users first.", refs[i]),
            )
        })?;
        if !ids.contains(&user.id) {
            ids.push(user.id);
        }
    }
    Ok(ids)
}

/// A host deleted between resolution and the write.
fn host_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => {
            ApiError::missing_reference("hosts", "A host no longer exists; check the hosts and retry.")
        }
        other => other.into(),
    }
}
