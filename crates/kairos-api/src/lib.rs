//! Kairos's HTTP edge: the axum router, API key auth, idempotency, errors in the contract's
//! shape, request metrics, and the OpenAPI document generated from the handlers themselves.
//!
//! A request flows: request id → trace span → route match → metrics → (under `/v1`) auth →
//! idempotency (POST) → handler → store. Handlers are thin: extract, call one function, map.
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod observability;
pub mod public;
pub mod routes;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use kairos_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use error::ApiError;
pub use kairos_store::Clock;
use routes::{
    availability, bookings, businesses, calendars, connect, events, health, links, mcp, payments, proposals, push,
    users, webhooks,
};

/// What every handler can reach. Cloned for every request (axum's `State`), so it is one
/// `Arc`: cloning the fields themselves cost a few dozen atomic increments and decrements per
/// request, contended across cores — a fifth of a slot search's CPU when measured.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub prometheus: PrometheusHandle,
    /// `KAIROS_ALLOW_PRIVATE_URLS`: webhook URLs may use http and private addresses.
    pub allow_private_urls: bool,
    /// Calendar sync: ICS feeds and provider accounts (the background loop uses the same).
    pub sync: kairos_jobs::calendar_sync::Syncer,
    /// `KAIROS_PUBLIC_URL`: where providers and browsers reach this server (OAuth callbacks,
    /// push notifications).
    pub public_url: url::Url,
    /// Stripe, for paid bookings; `None` without `KAIROS_STRIPE_SECRET_KEY`.
    pub payments: Option<routes::payments::Payments>,
    /// `POST /v1/mcp`, set by [`router`] (its tools call the router built without it).
    mcp: Option<Arc<mcp::Mcp>>,
    openapi_json: Arc<String>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        let sync = kairos_jobs::calendar_sync::Syncer::standard(
            store.clone(),
            clock.clone(),
            Default::default(),
            kairos_jobs::provider_sync::Providers::caldav_only(Arc::new(
                kairos_providers::sealed::Keyring::parse(&kairos_providers::sealed::Keyring::generate_secret())
                    .unwrap_or_else(|e| unreachable!("a generated key is valid: {e}")),
            )),
        );
        Self(Arc::new(Shared {
            store,
            clock,
            prometheus: observability::prometheus(),
            allow_private_urls: false,
            sync,
            public_url: url::Url::parse("http://127.0.0.1:3001").unwrap_or_else(|_| unreachable!()),
            payments: None,
            mcp: None,
            openapi_json: Arc::new(openapi_json()),
        }))
    }

    /// The fields, to change while the state is being set up (cloned if already shared).
    fn setup(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }

    pub fn with_payments(mut self, payments: Option<routes::payments::Payments>) -> Self {
        self.setup().payments = payments;
        self
    }

    /// Uses `sync` (configured by the binary) for calendars.
    pub fn with_sync(mut self, sync: kairos_jobs::calendar_sync::Syncer) -> Self {
        self.setup().sync = sync;
        self
    }

    /// Where providers and browsers reach this server.
    pub fn with_public_url(mut self, url: url::Url) -> Self {
        self.setup().public_url = url;
        self
    }

    /// Lets webhook URLs use http and reach private addresses (development and tests).
    pub fn allowing_private_urls(mut self, allow: bool) -> Self {
        self.setup().allow_private_urls = allow;
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kairos API",
        version = "1.0.0",
        description = "Self-hostable scheduling infrastructure: find open times across people and time zones, book them \
            without double booking, and hear about every change through signed webhooks. Authenticate with \
            `Authorization: Bearer sk_test_…`. Errors are `{\"error\": {\"type\", \"code\", \"message\", \"param\"}}`."
    ),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    tags(
        (name = "users", description = "People whose time counts"),
        (name = "businesses", description = "Bookable things: hours, rules, hosts"),
        (name = "availability", description = "Open slots and free/busy"),
        (name = "bookings", description = "Bookings in either request shape"),
        (name = "webhooks", description = "Signed, retried event deliveries to your endpoints"),
        (name = "calendars", description = "Calendar feeds, their busy time, and their events"),
        (name = "system", description = "Health, readiness and metrics"),
        (name = "proposals", description = "Multi-party scheduling: consensus proposals and polls"),
        (name = "agents", description = "The Model Context Protocol server for AI agents"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("sk_test_… or sk_live_…").build(),
            ),
        );
    }
}

/// The `/v1` routes that need a key, with their OpenAPI paths.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(users::create, users::list))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(businesses::create, businesses::list))
        .routes(routes!(businesses::get, businesses::update, businesses::delete))
        .routes(routes!(availability::slots))
        .routes(routes!(availability::free_busy))
        .routes(routes!(bookings::create, bookings::list))
        .routes(routes!(bookings::get))
        .routes(routes!(bookings::reschedule))
        .routes(routes!(bookings::cancel))
        .routes(routes!(links::create, links::list))
        .routes(routes!(links::get, links::update, links::delete))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(webhooks::test))
        .routes(routes!(calendars::connect_ics))
        .routes(routes!(connect::connect_caldav))
        .routes(routes!(connect::connect))
        .routes(routes!(connect::connect_url))
        .routes(routes!(calendars::list))
        .routes(routes!(calendars::select))
        .routes(routes!(calendars::sync))
        .routes(routes!(calendars::disconnect))
        .routes(routes!(events::list, events::create))
        .routes(routes!(events::update, events::delete))
        .routes(routes!(proposals::create, proposals::list))
        .routes(routes!(proposals::get))
        .routes(routes!(proposals::close))
        .routes(routes!(proposals::cancel))
        .routes(routes!(mcp::post))
}

/// The routes anyone may call.
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(connect::callback))
        .routes(routes!(push::google))
        .routes(routes!(push::microsoft))
        .routes(routes!(payments::stripe_webhook))
        .routes(routes!(routes::pages::payment::done))
        .routes(routes!(routes::pages::payment::cancelled, routes::pages::payment::release))
}

/// The public booking pages (HTML, no key; see `routes::pages`), each client rate-limited.
/// Not in the OpenAPI document: they are pages for people, not API.
fn page_routes() -> Router<AppState> {
    use axum::routing::get;
    let limits = Arc::new(public::Limits::default());
    Router::new()
        .route("/l/{slug}", get(routes::pages::week_page))
        .route("/l/{slug}/book", get(routes::pages::form).post(routes::pages::book))
        .route("/l/{slug}/booked/{id}", get(routes::pages::booked))
        .layer(from_fn_with_state(limits, public::rate_limit))
        .merge(
            Router::new()
                .route("/p/{token}", get(routes::pages::respond::page).post(routes::pages::respond::respond))
                .layer(from_fn_with_state(Arc::new(public::Limits::for_responses()), public::rate_limit)),
        )
}

/// The OpenAPI document of this server, as served at `/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_routes().split_for_parts();
    let (_, public) = public_routes().split_for_parts();
    doc.merge(public);
    doc.paths.add_path_operation("/v1/openapi.json", vec![utoipa::openapi::HttpMethod::Get], {
        utoipa::openapi::path::OperationBuilder::new()
            .tag("system")
            .summary(Some("This document"))
            .security(utoipa::openapi::security::SecurityRequirement::default())
            .response("200", utoipa::openapi::ResponseBuilder::new().description("OpenAPI 3.1 document"))
            .build()
    });
    doc
}

/// The OpenAPI document as pretty JSON with a trailing newline (the committed file's form).
pub fn openapi_json() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}

/// The whole HTTP application. `/v1/mcp`'s tools call the same application (built once more,
/// without MCP), so each tool call passes auth, idempotency and metrics like any request.
pub fn router(state: AppState) -> Router {
    let app = application(AppState(Arc::new(Shared { mcp: None, ..(*state).clone() })));
    let mcp = mcp::Mcp::new(app, &state.public_url);
    application(AppState(Arc::new(Shared { mcp: Some(Arc::new(mcp)), ..(*state).clone() })))
}

fn application(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let (v1, _) = api_routes().split_for_parts();
    let v1 = v1
        .layer(from_fn_with_state(state.clone(), idempotency::layer))
        .layer(from_fn_with_state(state.clone(), auth::authenticate));
    let (public, _) = public_routes().split_for_parts();
    Router::new()
        .merge(v1)
        .merge(public)
        .merge(page_routes())
        .route("/v1/openapi.json", axum::routing::get(serve_openapi))
        .route_layer(from_fn(observability::track))
        .fallback(not_found)
        .with_state(state)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                // One access-log line per request, inside the span that carries its request id.
                .on_response(
                    tower_http::trace::DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                ),
        )
        .layer(SetRequestIdLayer::new(request_id, observability::MakeUlid))
}

async fn serve_openapi(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], state.openapi_json.as_str().to_owned())
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    let mut e = ApiError::not_found("route", uri.path());
    e.status = StatusCode::NOT_FOUND;
    e.code = "route_not_found";
    e.message = format!("No route matches `{}`; see /v1/openapi.json for the API.", uri.path());
    e
}
