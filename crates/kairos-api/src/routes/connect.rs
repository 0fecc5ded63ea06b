//! Connecting provider accounts: OAuth 2.0 authorization code with PKCE for Google and
//! Microsoft (`connect`, `connect_url`, `callback`), and CalDAV with a username and password.
//!
//! The `state` sent to the provider is `<nonce>.<signature>`: signed with a key derived from
//! `KAIROS_SECRET_KEY`, pointing at a stored pending authorization (user, the app's redirect
//! URI and state, the sealed PKCE verifier) that expires after ten minutes and is taken once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use kairos_core::User;
use kairos_jobs::provider_sync::{OAuthProvider, Secret};
use kairos_providers::oauth::Pkce;
use kairos_providers::{Credentials, ProviderError, RemoteCalendar};
use kairos_store::{CalendarConnection, CalendarRecord, OAuthState, Tenant, ids};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::calendars::{CalendarView, Connected, ConnectionView, user_named};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Auth};

/// How long a consent screen may stay open.
const AUTHORIZATION_TTL: SignedDuration = SignedDuration::from_mins(10);
const VERIFIER_PURPOSE: &str = "oauth_states.verifier";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    /// Where the browser returns after consent, with `google_connected=true` (or
    /// `microsoft_connected=true`; on failure `…_connected=false&error=…`).
    pub redirect_uri: String,
    /// The app's user: a user id or email (also handed back to `redirect_uri`).
    pub state: Option<String>,
    /// The user, when `state` is the app's own value.
    pub user: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectUrlRequest {
    /// A user id (`usr_…`) or email.
    #[schema(example = "alice@example.com")]
    pub user: String,
    #[schema(example = "https://app.example.com/settings/calendars")]
    pub redirect_uri: String,
    /// Handed back to `redirect_uri` as `state`.
    pub state: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectUrl {
    /// Send the user's browser here.
    pub url: String,
    /// The link works once, until then.
    pub expires_at: Timestamp,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the provider when the user declined.
    pub error: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectCalDav {
    /// A user id (`usr_…`) or email.
    #[schema(example = "alice@example.com")]
    pub user: String,
    /// The CalDAV server (discovery starts from `/.well-known/caldav`), a calendar home, or a
    /// calendar collection.
    #[schema(example = "https://caldav.example.com/")]
    pub url: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for ConnectCalDav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectCalDav")
            .field("user", &self.user)
            .field("url", &self.url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn oauth_provider<'a>(state: &'a AppState, provider: &str) -> Result<&'a std::sync::Arc<OAuthProvider>, ApiError> {
    if !matches!(provider, "google" | "microsoft") {
        return Err(ApiError::invalid(
            "provider",
            format!(
                "`{provider}` is not an OAuth provider; use `google` or `microsoft` (CalDAV: POST /v1/calendars/caldav)."
            ),
        ));
    }
    state.sync.providers.providers().oauth(provider).ok_or_else(|| {
        let upper = provider.to_uppercase();
        ApiError::invalid(
            "provider",
            format!(
                "{provider} is not configured on this server; set KAIROS_{upper}_CLIENT_ID and KAIROS_{upper}_CLIENT_SECRET."
            ),
        )
    })
}

fn callback_url(state: &AppState, provider: &str) -> String {
    format!("{}/v1/calendars/{provider}/callback", state.public_url.as_str().trim_end_matches('/'))
}

fn checked_redirect(text: &str) -> Result<url::Url, ApiError> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => Ok(url),
        _ => Err(ApiError::invalid("redirect_uri", "Give an absolute http(s) URL of your app's page.")),
    }
}

/// Stores a pending authorization and returns the provider's consent URL.
async fn begin(
    state: &AppState,
    t: &Tenant,
    provider: &str,
    user: &User,
    redirect_uri: &url::Url,
    app_state: Option<String>,
) -> Result<ConnectUrl, ApiError> {
    let oauth = oauth_provider(state, provider)?;
    let keyring = &state.sync.providers.providers().keyring;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let nonce = hex::encode(bytes);
    let pkce = Pkce::new();
    let now = state.clock.now();
    let expires_at = now.saturating_add(AUTHORIZATION_TTL).unwrap_or(now);
    let pending = OAuthState {
        nonce: nonce.clone(),
        provider: provider.to_string(),
        user_id: user.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        app_state,
        verifier: keyring.seal(VERIFIER_PURPOSE, &nonce, pkce.verifier.as_bytes()),
        expires_at,
        created_at: now,
    };
    state.store.insert_oauth_state(t, &pending).await?;
    let signed = format!("{nonce}.{}", keyring.sign(&format!("oauth-state:{nonce}")));
    let url = oauth
        .app
        .authorize_url(&callback_url(state, provider), &signed, &pkce)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ConnectUrl { url: url.to_string(), expires_at })
}

#[utoipa::path(get, path = "/v1/calendars/{provider}/connect", tag = super::CALENDARS, params(
        ("provider" = String, Path, description = "`google` or `microsoft`"), ConnectQuery),
    responses((status = 302, description = "To the provider's consent page"), (status = 422, body = ErrorBody)))]
pub async fn connect(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(provider): Path<String>,
    ApiQuery(q): ApiQuery<ConnectQuery>,
) -> Result<Response, ApiError> {
    let redirect_uri = checked_redirect(&q.redirect_uri)?;
    let (param, who) = match (&q.user, &q.state) {
        (Some(user), _) => ("user", user.as_str()),
        (None, Some(state)) => ("state", state.as_str()),
        (None, None) => return Err(ApiError::missing("state", "Name the user in `state` (a user id or email).")),
    };
    let user = user_named(&state, &t, param, who).await?;
    let link = begin(&state, &t, &provider, &user, &redirect_uri, q.state.clone()).await?;
    Ok(found(&link.url))
}

#[utoipa::path(post, path = "/v1/calendars/{provider}/connect_url", tag = super::CALENDARS, params(
        ("provider" = String, Path, description = "`google` or `microsoft`")),
    request_body = ConnectUrlRequest,
    responses((status = 200, body = ConnectUrl), (status = 422, body = ErrorBody)))]
pub async fn connect_url(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(provider): Path<String>,
    ApiJson(body): ApiJson<ConnectUrlRequest>,
) -> Result<Json<ConnectUrl>, ApiError> {
    let redirect_uri = checked_redirect(&body.redirect_uri)?;
    let user = user_named(&state, &t, "user", &body.user).await?;
    Ok(Json(begin(&state, &t, &provider, &user, &redirect_uri, body.state).await?))
}

/// Where the browser goes after a callback: the app's page with the outcome.
fn back_to(pending: &OAuthState, outcome: Result<(), &str>) -> Response {
    let mut url = match url::Url::parse(&pending.redirect_uri) {
        Ok(url) => url,
        Err(_) => return ApiError::malformed("the stored redirect URI is invalid").into_response(),
    };
    {
        let mut q = url.query_pairs_mut();
        let key = format!("{}_connected", pending.provider);
        match outcome {
            Ok(()) => q.append_pair(&key, "true"),
            Err(error) => q.append_pair(&key, "false").append_pair("error", error),
        };
        if let Some(app_state) = &pending.app_state {
            q.append_pair("state", app_state);
        }
    }
    found(url.as_str())
}

/// 302 Found, as OAuth flows use (axum's `Redirect` offers 303, 307 and 308).
fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(axum::http::header::LOCATION, location.to_string())]).into_response()
}

#[utoipa::path(get, path = "/v1/calendars/{provider}/callback", tag = super::CALENDARS, security(()), params(
        ("provider" = String, Path, description = "`google` or `microsoft`"), CallbackQuery),
    responses((status = 302, description = "Back to the app's redirect_uri"),
        (status = 400, body = ErrorBody, description = "Unknown, forged, used or expired state")))]
pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    axum::extract::Query(q): axum::extract::Query<CallbackQuery>,
) -> Response {
    let refused = |why: &str| {
        ApiError::malformed(format!("This authorization cannot be completed: {why}. Start again from your app."))
            .with_param("state")
            .into_response()
    };
    let keyring = state.sync.providers.providers().keyring.clone();
    let Some((nonce, signature)) = q.state.as_deref().and_then(|s| s.split_once('.')) else {
        return refused("the state is missing or malformed");
    };
    if !keyring.verify(&format!("oauth-state:{nonce}"), signature) {
        return refused("the state is not one this server signed");
    }
    let pending = match state.store.take_oauth_state(nonce, state.clock.now()).await {
        Ok(Some(found)) => found,
        Ok(None) => return refused("it expired or was already used"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (t, pending) = pending;
    if pending.provider != provider {
        return refused("it was started for another provider");
    }
    if let Some(error) = &q.error {
        return back_to(&pending, Err(error));
    }
    let Some(code) = &q.code else { return back_to(&pending, Err("invalid_request")) };
    match complete(&state, &t, &pending, code).await {
        Ok(()) => back_to(&pending, Ok(())),
        Err(why) => {
            tracing::warn!(provider = %provider, error = %why, "completing an OAuth connection failed");
            back_to(&pending, Err(why.code()))
        }
    }
}

enum Failure {
    Exchange(String),
    Provider(String),
    Store(kairos_store::StoreError),
}

impl Failure {
    fn code(&self) -> &'static str {
        match self {
            Self::Exchange(_) => "token_exchange_failed",
            Self::Provider(_) => "provider_error",
            Self::Store(_) => "server_error",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exchange(why) | Self::Provider(why) => f.write_str(why),
            Self::Store(e) => e.fmt(f),
        }
    }
}

/// Exchanges the code, lists the calendars, stores the connection and makes it due for a sync.
async fn complete(state: &AppState, t: &Tenant, pending: &OAuthState, code: &str) -> Result<(), Failure> {
    let providers = state.sync.providers.providers();
    let oauth = providers.oauth(&pending.provider).ok_or_else(|| Failure::Provider("not configured".into()))?;
    let verifier = providers
        .keyring
        .open(VERIFIER_PURPOSE, &pending.nonce, &pending.verifier)
        .map_err(|e| Failure::Exchange(e.to_string()))?;
    let verifier = String::from_utf8(verifier).map_err(|_| Failure::Exchange("verifier".into()))?;
    let client = state.sync.providers.client();
    let now = state.clock.now();
    let tokens = oauth
        .app
        .exchange_code(client, code, &verifier, &callback_url(state, &pending.provider), now)
        .await
        .map_err(|e| Failure::Exchange(e.to_string()))?;
    let listed = oauth
        .api
        .list_calendars(&Credentials::Bearer(tokens.access_token.clone()))
        .await
        .map_err(|e| Failure::Provider(e.to_string()))?;
    // The account is named by its primary calendar (Google's is the account's email).
    let account = listed
        .iter()
        .find(|c| c.primary)
        .or(listed.first())
        .map(|c| c.id.clone())
        .ok_or_else(|| Failure::Provider("the account has no calendars".into()))?;
    let secret = Secret::OAuth {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: tokens.expires_at,
    };
    let user = state.store.user(t, &pending.user_id).await.map_err(Failure::Store)?;
    let Some(user) = user else { return Err(Failure::Provider("the user no longer exists".into())) };
    let connected = store_connection(state, t, &user, &pending.provider, &account, &secret, &listed, |c| c.primary)
        .await
        .map_err(Failure::Store)?;
    state.store.request_calendar_sync(t, &connected.connection.id, now).await.map_err(Failure::Store)?;
    state.sync.nudge.notify_one();
    Ok(())
}

/// Stores a connection (a new one, or new credentials for one the user made before) with its
/// calendars; `select` picks the calendars that block availability at first.
#[allow(clippy::too_many_arguments)]
async fn store_connection(
    state: &AppState,
    t: &Tenant,
    user: &User,
    provider: &str,
    account: &str,
    secret: &Secret,
    listed: &[RemoteCalendar],
    select: impl Fn(&RemoteCalendar) -> bool,
) -> Result<kairos_store::Connected, kairos_store::StoreError> {
    // The sealed secret is bound to its row: reuse the id of an earlier connection. Two
    // connects of one account racing: the loser is told the winner's id and seals again.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let now = state.clock.now();
        let id = state
            .store
            .calendar_connections(t, Some(&user.id))
            .await?
            .into_iter()
            .find(|c| c.provider == provider && c.url == account)
            .map_or_else(|| ids::new_id("conn"), |c| c.id);
        let connection = CalendarConnection {
            id: id.clone(),
            user_id: user.id.clone(),
            provider: provider.to_string(),
            url: account.to_string(),
            status: "active".into(),
            etag: None,
            last_modified: None,
            last_sync: None,
            last_error: None,
            next_sync_at: now,
            created_at: now,
            updated_at: now,
        };
        let calendars: Vec<CalendarRecord> = listed
            .iter()
            .map(|c| CalendarRecord {
                id: ids::new_id("cal"),
                connection_id: id.clone(),
                user_id: user.id.clone(),
                name: c.name.clone(),
                provider: provider.to_string(),
                primary: c.primary,
                selected: select(c),
                event_count: 0,
                created_at: now,
                updated_at: now,
                remote_id: Some(c.id.clone()),
                cursor: None,
                writable: c.writable,
            })
            .collect();
        let sealed = secret.seal(&state.sync.providers.providers().keyring, &id);
        match state.store.connect_provider(t, &connection, &sealed, &calendars, now).await {
            Err(kairos_store::StoreError::Conflict("id")) if attempt < 3 => continue,
            other => return other,
        }
    }
}

#[utoipa::path(post, path = "/v1/calendars/caldav", tag = super::CALENDARS, request_body = ConnectCalDav,
    responses((status = 201, body = Connected), (status = 200, body = Connected, description = "Reconnected"),
        (status = 422, body = ErrorBody, description = "The server could not be used (unreachable, credentials refused, not CalDAV)")))]
pub async fn connect_caldav(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<ConnectCalDav>,
) -> Result<(StatusCode, Json<Connected>), ApiError> {
    let user = user_named(&state, &t, "user", &body.user).await?;
    let checked = kairos_jobs::egress::check_url(body.url.trim(), state.sync.feeds.config().allow_private)
        .await
        .map_err(|refusal| ApiError::invalid("url", format!("Refused `{}`: {refusal}.", body.url)))?;
    let Some(factory) = state.sync.providers.providers().caldav.clone() else {
        return Err(ApiError::invalid("url", "CalDAV is not enabled on this server."));
    };
    let adapter = factory(state.sync.providers.client(), &checked);
    let credentials = Credentials::Basic { username: body.username.clone(), password: body.password.clone() };
    let listed = adapter.list_calendars(&credentials).await.map_err(|e| match e {
        ProviderError::Unauthorized(_) => ApiError::invalid(
            "password",
            "The CalDAV server refused this username and password; check them (many servers want an app password).",
        ),
        ProviderError::Transport(why) => {
            ApiError::invalid("url", format!("The CalDAV server could not be reached: {why}."))
        }
        other => ApiError::invalid("url", format!("This is not a usable CalDAV server: {other}.")),
    })?;
    if listed.is_empty() {
        return Err(ApiError::invalid("url", "The CalDAV account has no event calendars; create one first."));
    }
    let secret = Secret::Basic { username: body.username, password: body.password };
    let connected = store_connection(&state, &t, &user, "caldav", checked.as_str(), &secret, &listed, |_| true).await?;
    // Fetch once before answering, as for feeds: the answer shows the first sync's outcome.
    state.sync.sync(&t, &connected.connection).await?;
    let connection = state
        .store
        .calendar_connections(&t, Some(&user.id))
        .await?
        .into_iter()
        .find(|c| c.id == connected.connection.id)
        .unwrap_or(connected.connection);
    let calendars = state
        .store
        .calendars(&t, Some(&user.id))
        .await?
        .into_iter()
        .filter(|c| c.connection_id == connection.id)
        .map(CalendarView::from)
        .collect();
    let status = if connected.existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        status,
        Json(Connected { connection: ConnectionView::from(connection), calendars, skipped_events: Vec::new() }),
    ))
}
