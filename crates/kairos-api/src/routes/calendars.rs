//! `/v1/calendars`: connecting ICS feeds, listing and selecting calendars, manual sync and
//! disconnecting (provider accounts connect in `connect`). The fetching and reading is
//! `kairos_jobs::calendar_sync` and `kairos_jobs::provider_sync`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use kairos_core::User;
use kairos_jobs::calendar_sync::{Fetched, normalise_feed_url};
use kairos_store::{CalendarConnection, CalendarRecord, Tenant, ids};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, on_object};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::wire;

/// A calendar as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarView {
    #[schema(example = "cal_01jd3k5v7w8x9y0z1a2b3c4d5e")]
    pub id: String,
    pub name: String,
    /// `google`, `microsoft`, `caldav` or `ics`.
    pub provider: String,
    pub primary: bool,
    /// Only selected calendars block availability.
    pub selected: bool,
    pub user_id: String,
    pub connection_id: String,
}

impl From<CalendarRecord> for CalendarView {
    fn from(c: CalendarRecord) -> Self {
        Self {
            id: c.id,
            name: c.name,
            provider: c.provider,
            primary: c.primary,
            selected: c.selected,
            user_id: c.user_id,
            connection_id: c.connection_id,
        }
    }
}

/// A connection as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    #[schema(example = "conn_01jd3k5v7w8x9y0z1a2b3c4d5e")]
    pub id: String,
    pub user_id: String,
    pub provider: String,
    /// The feed's or CalDAV server's URL, or the provider account (its primary calendar's
    /// id: Google's is the account's email).
    pub url: String,
    /// `active`; `error` when the last sync failed; `needs_reauth` when the user must connect
    /// again.
    pub status: String,
    pub last_sync: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

impl From<CalendarConnection> for ConnectionView {
    fn from(c: CalendarConnection) -> Self {
        Self {
            id: c.id,
            user_id: c.user_id,
            provider: c.provider,
            url: c.url,
            status: c.status,
            last_sync: c.last_sync,
            last_error: c.last_error,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectIcs {
    /// The user whose calendar it is: an id (`usr_…`) or an email.
    #[schema(example = "alice@example.com")]
    pub user: String,
    /// An https (or webcal) URL of an iCalendar feed.
    #[schema(example = "https://calendar.example.com/alice.ics")]
    pub url: String,
}

/// A new connection and its calendars.
#[derive(Debug, Serialize, ToSchema)]
pub struct Connected {
    pub connection: ConnectionView,
    pub calendars: Vec<CalendarView>,
    /// Events of the feed that could not be read (the rest count).
    pub skipped_events: Vec<SkippedEvent>,
}

/// An event a feed got wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedEvent {
    pub uid: Option<String>,
    /// Where it begins in the feed.
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    pub name: String,
    pub connected: bool,
    pub calendar_count: usize,
    pub status: Option<String>,
    pub last_sync: Option<Timestamp>,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarList {
    pub calendars: Vec<CalendarView>,
    pub providers: Vec<ProviderView>,
    /// Each connection on its own (a user may connect two accounts of one provider).
    pub connections: Vec<ConnectionView>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// A user id or email; absent means every user of the account.
    pub user: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DisconnectQuery {
    /// `google`, `microsoft`, `caldav` or `ics`.
    pub provider: String,
    /// A user id or email; absent means every user of the account.
    pub user: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectCalendar {
    pub selected: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Synced {
    /// Events read by the syncs this call made (0 when throttled or unchanged).
    pub events_synced: u32,
    pub last_sync: Option<Timestamp>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Disconnected {
    pub provider: String,
    pub disconnected: usize,
}

/// Every kind of connection, as `GET /v1/calendars` lists them.
const PROVIDERS: [&str; 4] = ["google", "microsoft", "caldav", "ics"];

/// A manual sync within this long of the last one returns it without syncing again.
const SYNC_THROTTLE: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// The user a request names (id or email), or 422 naming `param`.
pub(crate) async fn user_named(state: &AppState, t: &Tenant, param: &str, text: &str) -> Result<User, ApiError> {
    let r = wire::user_ref(param, text)?;
    state.store.resolve_users(t, std::slice::from_ref(&r)).await?.pop().flatten().ok_or_else(|| {
        ApiError::missing_reference(
            param,
            "No user matches; create the user with POST /v1/users or fix the id or email.",
        )
    })
}

#[utoipa::path(post, path = "/v1/calendars/ics", tag = super::CALENDARS, request_body = ConnectIcs,
    responses((status = 201, body = Connected), (status = 409, body = ErrorBody, description = "Already connected"),
        (status = 422, body = ErrorBody, description = "The feed could not be used (unreachable, refused, not iCalendar)")))]
pub async fn connect_ics(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<ConnectIcs>,
) -> Result<(StatusCode, Json<Connected>), ApiError> {
    let user = user_named(&state, &t, "user", &body.user).await?;
    let url = normalise_feed_url(&body.url);
    let feeds = &state.sync.feeds;
    let checked = kairos_jobs::egress::check_url(&url, feeds.config().allow_private)
        .await
        .map_err(|refusal| ApiError::invalid("url", format!("Refused `{url}`: {refusal}.")))?;
    let unusable = |why: String| ApiError::invalid("url", format!("The feed could not be used: {why}."));
    let Fetched::Changed { text, etag, last_modified } =
        feeds.fetch(checked.as_str(), None, None).await.map_err(unusable)?
    else {
        return Err(unusable("the server answered 304 to an unconditional request".into()));
    };
    let now = state.clock.now();
    let digest = feeds.digest(&text, &user, now).map_err(unusable)?;
    let (name, events, busy) = (digest.name, digest.events, digest.busy);
    let every = jiff::SignedDuration::try_from(feeds.config().every).unwrap_or(jiff::SignedDuration::from_mins(15));
    let connection = CalendarConnection {
        id: ids::new_id("conn"),
        user_id: user.id.clone(),
        provider: "ics".into(),
        url: checked.to_string(),
        status: "active".into(),
        etag,
        last_modified,
        last_sync: Some(now),
        last_error: None,
        next_sync_at: now.saturating_add(every).unwrap_or(now),
        created_at: now,
        updated_at: now,
    };
    let calendar = CalendarRecord {
        id: ids::new_id("cal"),
        connection_id: connection.id.clone(),
        user_id: user.id.clone(),
        name: name.unwrap_or_else(|| checked.host_str().unwrap_or("Feed").to_string()),
        provider: "ics".into(),
        primary: false,
        selected: true,
        event_count: events,
        created_at: now,
        updated_at: now,
        remote_id: None,
        cursor: None,
        writable: false,
    };
    state.store.insert_calendar_connection(&t, &connection, &calendar, &text, &busy).await.map_err(|e| match e {
        kairos_store::StoreError::Conflict(_) => ApiError::conflict(
            "already_connected",
            "This user already has this feed; sync it with POST /v1/calendars/sync.",
        )
        .with_param("url"),
        other => other.into(),
    })?;
    let skipped_events =
        digest.skipped.into_iter().map(|s| SkippedEvent { uid: s.uid, line: s.line, reason: s.reason }).collect();
    Ok((
        StatusCode::CREATED,
        Json(Connected { connection: connection.into(), calendars: vec![calendar.into()], skipped_events }),
    ))
}

#[utoipa::path(get, path = "/v1/calendars", tag = super::CALENDARS, params(UserQuery),
    responses((status = 200, body = CalendarList), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<CalendarList>, ApiError> {
    let user = match &q.user {
        Some(text) => Some(user_named(&state, &t, "user", text).await?.id),
        None => None,
    };
    let calendars = state.store.calendars(&t, user.as_deref()).await?;
    let connections = state.store.calendar_connections(&t, user.as_deref()).await?;
    let providers = PROVIDERS
        .iter()
        .map(|&name| {
            let mine: Vec<&CalendarConnection> = connections.iter().filter(|c| c.provider == name).collect();
            // The status that needs attention first.
            let worst =
                mine.iter().find(|c| c.status == "needs_reauth").or_else(|| mine.iter().find(|c| c.status != "active"));
            ProviderView {
                name: name.into(),
                connected: !mine.is_empty(),
                calendar_count: calendars.iter().filter(|c| c.provider == name).count(),
                status: (!mine.is_empty()).then(|| worst.map_or("active", |c| c.status.as_str()).to_string()),
                last_sync: mine.iter().filter_map(|c| c.last_sync).max(),
                last_error: worst.and_then(|c| c.last_error.clone()),
            }
        })
        .collect();
    Ok(Json(CalendarList {
        calendars: calendars.into_iter().map(Into::into).collect(),
        providers,
        connections: connections.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(patch, path = "/v1/calendars/{id}", tag = super::CALENDARS, params(("id" = String, Path)), request_body = SelectCalendar,
    responses((status = 200, body = CalendarView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn select(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SelectCalendar>,
) -> Result<Json<CalendarView>, ApiError> {
    let calendar = state
        .store
        .select_calendar(&t, &id, body.selected, state.clock.now())
        .await
        .map_err(on_object("calendar", &id))?;
    Ok(Json(calendar.into()))
}

#[utoipa::path(post, path = "/v1/calendars/sync", tag = super::CALENDARS, params(UserQuery),
    responses((status = 200, body = Synced), (status = 422, body = ErrorBody)))]
pub async fn sync(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<Synced>, ApiError> {
    let user = match &q.user {
        Some(text) => Some(user_named(&state, &t, "user", text).await?.id),
        None => None,
    };
    let now = state.clock.now();
    let mut events_synced = 0;
    for conn in state.store.calendar_connections(&t, user.as_deref()).await? {
        // Throttled on the last attempt, failed ones included (`updated_at` moves with each).
        if conn.updated_at.saturating_add(SYNC_THROTTLE).is_ok_and(|until| now < until) {
            continue;
        }
        events_synced += state.sync.sync(&t, &conn).await?.events;
    }
    let last_sync =
        state.store.calendar_connections(&t, user.as_deref()).await?.iter().filter_map(|c| c.last_sync).max();
    Ok(Json(Synced { events_synced, last_sync }))
}

#[utoipa::path(delete, path = "/v1/calendars/disconnect", tag = super::CALENDARS, params(DisconnectQuery),
    responses((status = 200, body = Disconnected), (status = 422, body = ErrorBody)))]
pub async fn disconnect(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(q): ApiQuery<DisconnectQuery>,
) -> Result<Json<Disconnected>, ApiError> {
    if !PROVIDERS.contains(&q.provider.as_str()) {
        return Err(ApiError::invalid(
            "provider",
            format!("`{}` is not a provider; use one of google, microsoft, caldav, ics.", q.provider),
        ));
    }
    let user = match &q.user {
        Some(text) => Some(user_named(&state, &t, "user", text).await?.id),
        None => None,
    };
    // Stop push and revoke the grant first (best effort: the user's data goes either way).
    for conn in state.store.calendar_connections(&t, user.as_deref()).await? {
        if conn.provider == q.provider {
            state.sync.providers.release(&t, &conn).await;
        }
    }
    let disconnected =
        state.store.delete_calendar_connections(&t, user.as_deref(), &q.provider, state.clock.now()).await?;
    Ok(Json(Disconnected { provider: q.provider, disconnected }))
}
