//! `/v1/links`: booking links, each a public page at `/l/{slug}` where anyone can book a
//! business or named people (see `routes::pages`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kairos_core::Link;
use kairos_store::{Edit, StoreError, UserRef};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::wire::{self, Deleted, Pagination};

/// `{business_id | participants, duration_minutes, title, slug?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    /// Book this business's hosts, by its rules…
    pub business_id: Option<String>,
    /// …or these people (`user:alice@example.com` or user ids), all of whom must be free.
    pub participants: Option<Vec<String>>,
    /// 5 to 720; 30 when absent.
    #[schema(example = 30)]
    pub duration_minutes: Option<u32>,
    #[schema(example = "Intro call")]
    pub title: Option<String>,
    /// 3–64 lowercase letters, digits and hyphens; a random one when absent.
    #[schema(example = "intro-call")]
    pub slug: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLink {
    pub title: Option<String>,
    pub slug: Option<String>,
    pub duration_minutes: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LinksQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A link with the address of its public page.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkOut {
    #[serde(flatten)]
    pub link: Link,
    /// The public page: `{KAIROS_PUBLIC_URL}/l/{slug}`.
    #[schema(example = "https://book.example.com/l/intro-call")]
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct LinkList {
    pub data: Vec<LinkOut>,
    pub next_cursor: Option<String>,
}

fn out(state: &AppState, link: Link) -> LinkOut {
    let url = format!("{}/l/{}", state.public_url.as_str().trim_end_matches('/'), link.slug);
    LinkOut { link, url }
}

/// A slug is part of a URL path that anyone may type: short, lowercase, unambiguous.
fn slug(value: &str) -> Result<String, ApiError> {
    let s = value.trim();
    let ok = (3..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if !ok {
        return Err(ApiError::invalid(
            "slug",
            format!(
                "`slug` must be 3–64 lowercase letters, digits and hyphens, not starting or ending with a hyphen (not `{s}`)."
            ),
        ));
    }
    Ok(s.to_string())
}

/// 10 characters of an unambiguous alphabet (~50 bits): unguessable enough for a page that
/// shows only free times, short enough to read out.
fn random_slug() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn duration(value: Option<u32>) -> Result<u32, ApiError> {
    match value {
        None => Ok(30),
        Some(d @ 5..=720) => Ok(d),
        Some(d) => Err(ApiError::invalid("duration_minutes", format!("`duration_minutes` must be 5 to 720, not {d}."))),
    }
}

fn title(value: Option<String>) -> Result<Option<String>, ApiError> {
    wire::text("title", value, 200)
}

fn slug_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict("slug") => {
            ApiError::conflict("slug_taken", "Another link already uses this slug; choose a different one.")
                .with_param("slug")
        }
        other => other.into(),
    }
}

#[utoipa::path(post, path = "/v1/links", tag = super::BOOKINGS, request_body = CreateLink,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 hours")),
    responses((status = 201, body = LinkOut), (status = 404, body = ErrorBody, description = "Unknown business or participant"),
        (status = 409, body = ErrorBody, description = "slug_taken"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<CreateLink>,
) -> Result<(StatusCode, Json<LinkOut>), ApiError> {
    let business_id = body.business_id.filter(|b| !b.trim().is_empty());
    let refs = body
        .participants
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, p)| wire::user_ref(&format!("participants[{i}]"), p))
        .collect::<Result<Vec<UserRef>, _>>()?;
    match (&business_id, refs.is_empty()) {
        (None, true) => {
            return Err(ApiError::missing(
                "business_id",
                "Say who is booked through the link: give `business_id` or `participants`.",
            ));
        }
        (Some(_), false) => {
            return Err(ApiError::invalid(
                "participants",
                "Give `business_id` or `participants`, not both: a business's hosts are its participants.",
            ));
        }
        _ => {}
    }
    if refs.len() > 20 {
        return Err(ApiError::invalid("participants", "A link can book at most 20 participants."));
    }
    let duration_minutes = duration(body.duration_minutes)?;
    let slug = body.slug.as_deref().map(slug).transpose()?;
    let mut title = title(body.title)?;
    if let Some(id) = &business_id {
        let business = state.store.business(&t, id).await?.ok_or_else(|| {
            ApiError::missing_reference("business_id", format!("No business `{id}`; create it first or check the id."))
        })?;
        title.get_or_insert(business.name);
    }
    let mut participants = Vec::with_capacity(refs.len());
    for (i, user) in state.store.resolve_users(&t, &refs).await?.into_iter().enumerate() {
        let user = user.ok_or_else(|| {
            ApiError::missing_reference(format!("participants[{i}]"), "No such user; create the user first.")
        })?;
        if !participants.contains(&user.id) {
            participants.push(user.id);
        }
    }
    let Some(title) = title else {
        return Err(ApiError::missing("title", "`title` is required: what is being booked?"));
    };
    let now = state.clock.now();
    let link = Link {
        id: kairos_store::ids::new_id("link"),
        slug: slug.unwrap_or_else(random_slug),
        title,
        business_id,
        participants,
        duration_minutes,
        created_at: now,
        updated_at: now,
    };
    state.store.insert_link(&t, &link).await.map_err(slug_taken)?;
    Ok((StatusCode::CREATED, Json(out(&state, link))))
}

#[utoipa::path(get, path = "/v1/links", tag = super::BOOKINGS, params(LinksQuery),
    responses((status = 200, body = LinkList), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(q): ApiQuery<LinksQuery>,
) -> Result<Json<LinkList>, ApiError> {
    let page = Pagination { limit: q.limit, cursor: q.cursor }.page()?;
    let page = state.store.links(&t, &page).await?;
    Ok(Json(LinkList { data: page.data.into_iter().map(|l| out(&state, l)).collect(), next_cursor: page.next_cursor }))
}

#[utoipa::path(get, path = "/v1/links/{id}", tag = super::BOOKINGS, params(("id" = String, Path)),
    responses((status = 200, body = LinkOut), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<LinkOut>, ApiError> {
    let link = state.store.link(&t, &id).await?.ok_or_else(|| ApiError::not_found("link", &id))?;
    Ok(Json(out(&state, link)))
}

#[utoipa::path(patch, path = "/v1/links/{id}", tag = super::BOOKINGS, params(("id" = String, Path)), request_body = UpdateLink,
    responses((status = 200, body = LinkOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateLink>,
) -> Result<Json<LinkOut>, ApiError> {
    let new_slug = body.slug.as_deref().map(slug).transpose()?;
    let new_title = match body.title {
        None => None,
        Some(t) => Some(title(Some(t))?.ok_or_else(|| ApiError::invalid("title", "`title` must not be empty."))?),
    };
    let new_duration = body.duration_minutes.map(|d| duration(Some(d))).transpose()?;
    let now = state.clock.now();
    let edit: Edit<Link> = Box::new(move |link| {
        if let Some(s) = new_slug {
            link.slug = s;
        }
        if let Some(t) = new_title {
            link.title = t;
        }
        if let Some(d) = new_duration {
            link.duration_minutes = d;
        }
        link.updated_at = now;
        Ok(())
    });
    let link = state.store.update_link(&t, &id, edit).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found("link", &id),
        other => slug_taken(other),
    })?;
    Ok(Json(out(&state, link)))
}

#[utoipa::path(delete, path = "/v1/links/{id}", tag = super::BOOKINGS, params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    if state.store.delete_link(&t, &id).await? {
        Ok(Json(Deleted { id, deleted: true }))
    } else {
        Err(ApiError::not_found("link", &id))
    }
}
