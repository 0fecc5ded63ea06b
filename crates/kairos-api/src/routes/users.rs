//! `/v1/users`: the people whose time counts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kairos_core::schedule::{DateOverrides, Schedule, WorkingHours};
use kairos_core::{User, Zone};
use kairos_store::{Edit, ids};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, on_object};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::wire::{self, Deleted, Pagination};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(example = "alice@example.com")]
    pub email: String,
    pub name: Option<String>,
    /// IANA time zone of the user's working hours.
    #[schema(value_type = String, example = "Europe/Berlin")]
    pub timezone: Zone,
    /// Defaults to Monday–Friday, 09:00–17:00.
    #[schema(value_type = Option<kairos_core::schedule::doc::WorkingHours>)]
    pub working_hours: Option<WorkingHours>,
    #[schema(value_type = Option<kairos_core::schedule::doc::DateOverrides>)]
    pub date_overrides: Option<DateOverrides>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// `null` clears the name.
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
}

/// A page of users.
#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub data: Vec<User>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/users", tag = super::USERS, request_body = CreateUser,
    responses((status = 201, body = User), (status = 409, body = ErrorBody, description = "The email is taken"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let now = state.clock.now();
    let user = User {
        id: ids::new_id("usr"),
        email: wire::email("email", &body.email)?,
        name: wire::text("name", body.name, 200)?,
        schedule: Schedule::new(
            body.timezone,
            body.working_hours.unwrap_or_else(WorkingHours::business_days_nine_to_five),
            body.date_overrides.unwrap_or_default(),
        ),
        created_at: now,
        updated_at: now,
    };
    wire::check_overrides(&user.schedule)?;
    state.store.insert_user(&t, &user).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = super::USERS, params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Auth(t): Auth, Path(id): Path<String>) -> Result<Json<User>, ApiError> {
    state.store.user(&t, &id).await?.map(Json).ok_or_else(|| ApiError::not_found("user", &id))
}

#[utoipa::path(get, path = "/v1/users", tag = super::USERS, params(Pagination), responses((status = 200, body = UserList)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(p): ApiQuery<Pagination>,
) -> Result<Json<kairos_store::Page<User>>, ApiError> {
    Ok(Json(state.store.users(&t, &p.page()?).await?))
}

#[utoipa::path(patch, path = "/v1/users/{id}", tag = super::USERS, params(("id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<User>, ApiError> {
    // Validate what can be validated alone, then apply it to the current user inside the
    // write transaction (concurrent PATCHes do not undo each other).
    let email = wire::required("email", body.email)?.map(|e| wire::email("email", &e)).transpose()?;
    let name = body.name.map(|n| wire::text("name", n, 200)).transpose()?;
    let zone = wire::required("timezone", body.timezone)?;
    let hours = wire::required("working_hours", body.working_hours)?;
    let overrides = body.date_overrides;
    let now = state.clock.now();
    let edit: Edit<User> = Box::new(move |user| {
        if let Some(email) = email {
            user.email = email;
        }
        if let Some(name) = name {
            user.name = name;
        }
        if let Some(zone) = zone {
            user.schedule.timezone = zone;
        }
        if let Some(hours) = hours {
            user.schedule.working_hours = hours;
        }
        if let Some(overrides) = overrides {
            user.schedule.date_overrides = overrides.unwrap_or_default();
        }
        wire::check_overrides_in_edit(&user.schedule)?;
        user.updated_at = now;
        Ok(())
    });
    let user = state.store.update_user(&t, &id, edit).await.map_err(on_object("user", &id))?;
    Ok(Json(user))
}

#[utoipa::path(delete, path = "/v1/users/{id}", tag = super::USERS, params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    if state.store.delete_user(&t, &id).await? {
        Ok(Json(Deleted { id, deleted: true }))
    } else {
        Err(ApiError::not_found("user", &id))
    }
}
