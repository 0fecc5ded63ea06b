//! The `kairos` binary's wiring, as a library so that tests start the very same server:
//! configuration from the environment, opening the store, and serving the router until a
//! shutdown signal.
#![forbid(unsafe_code)]

pub mod config;
pub mod providers;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use kairos_api::{AppState, Clock};
use kairos_jobs::DeliveryWorker;
use kairos_jobs::calendar_sync::Syncer;
use kairos_store::Store;
use kairos_store_postgres::{PgOptions, PgStore};
use kairos_store_sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;

pub use config::Config;

/// Opens the store a database URL names, applying migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url.as_str();
    if url.starts_with("sqlite:") {
        let mut options = SqliteOptions::new(kairos_store_sqlite::path_of(url)?);
        options.synchronous_full = config.sqlite_synchronous_full;
        let store = SqliteStore::open(&options)
            .await
            .with_context(|| format!("could not open the SQLite database at {url}"))?;
        return Ok(Arc::new(store));
    }
    if is_postgres(url) {
        let mut options = PgOptions::new(url);
        options.max_connections = config.pg_max_connections;
        options.statement_timeout = config.pg_statement_timeout;
        let store = PgStore::open(&options).await.context("could not open the PostgreSQL database")?;
        return Ok(Arc::new(store));
    }
    anyhow::bail!("KAIROS_DATABASE_URL must start with sqlite:// or postgres://, not `{url}`")
}

/// Whether a database URL names PostgreSQL.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// Serves the API on `listener`, and delivers webhooks and sweeps in the background, until
/// `shutdown` resolves; then finishes in-flight requests and delivery attempts.
///
/// `clock` is the API's "now" (tests fix it); background work runs on
/// `config.background_clock`, whose delays really pass.
pub async fn serve(
    store: Arc<dyn Store>,
    clock: Clock,
    listener: TcpListener,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // One stop signal for the HTTP server and the background work: when `shutdown` resolves,
    // the worker stops claiming at once instead of after the HTTP drain.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop);
    let forward = tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            let _ = stop.send(true);
        }
    });
    let stop_signal = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let worker = DeliveryWorker::new(store.clone(), config.background_clock.clone(), config.webhooks.clone())
        .context("could not build the webhook HTTP client")?;
    let worker = tokio::spawn(worker.run(stop_signal()));
    let sweeper = tokio::spawn(kairos_jobs::sweep::run(
        store.clone(),
        config.background_clock.clone(),
        config.webhook_retention,
        stop_signal(),
    ));
    // The default public URL follows the address actually bound (port 0 in tests).
    let mut config = config.clone();
    if config.public_url == format!("http://{}", config.bind)
        && let Ok(addr) = listener.local_addr()
    {
        config.public_url = format!("http://{addr}");
    }
    let config = &config;
    let providers = providers::configure(config)?;
    // The keyring that seals provider tokens also seals proposal response links.
    let keyring = providers.keyring.clone();
    let sync = Syncer::standard(store.clone(), config.background_clock.clone(), config.calendars.clone(), providers);
    let syncer = tokio::spawn(sync.clone().run(stop_signal()));
    let writer =
        kairos_jobs::writeback::WriteBack::new(sync.providers.clone(), store.clone(), config.background_clock.clone());
    let writer = tokio::spawn(writer.run(stop_signal()));
    let emails = tokio::spawn(email_worker(store.clone(), config, keyring)?.run(stop_signal()));
    let payments = match &config.stripe {
        Some(s) => {
            let http = kairos_jobs::egress::client(std::time::Duration::from_secs(30), config.calendars.allow_private)
                .context("could not build the Stripe HTTP client")?;
            Some(kairos_api::routes::payments::Payments {
                client: kairos_providers::stripe::StripeClient::new(s.secret_key.clone(), s.api_base.clone(), http),
                webhook_secret: s.webhook_secret.clone(),
            })
        }
        None => None,
    };
    let holds = tokio::spawn(kairos_jobs::holds::run(
        store.clone(),
        config.background_clock.clone(),
        payments.as_ref().map(|p| p.client.clone()),
        stop_signal(),
    ));
    let proposals =
        tokio::spawn(kairos_jobs::proposals::run(store.clone(), config.background_clock.clone(), stop_signal()));
    let public_url = url::Url::parse(&config.public_url)
        .with_context(|| format!("KAIROS_PUBLIC_URL must be a URL, not `{}`", config.public_url))?;
    let state = AppState::new(store, clock)
        .allowing_private_urls(config.webhooks.allow_private)
        .with_sync(sync)
        .with_public_url(public_url)
        .with_payments(payments);
    let prometheus = state.prometheus.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            prometheus.run_upkeep();
        }
    });
    let app = kairos_api::public::guard(kairos_api::router(state), config.trusted_proxies.clone());
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(stop_signal())
        .await;
    upkeep.abort();
    forward.abort();
    let _ = stop.send(true);
    let _ = tokio::join!(worker, sweeper, syncer, writer, emails, holds, proposals);
    served.context("the HTTP server failed")
}

/// The email worker: SMTP from `KAIROS_SMTP_URL` (none: every email is recorded as skipped),
/// also trusting the authorities of `KAIROS_SMTP_CA_FILE`, and the templates, built in or from
/// `KAIROS_TEMPLATES_DIR`; `keyring` opens the proposal response links the API sealed.
fn email_worker(
    store: Arc<dyn Store>,
    config: &Config,
    keyring: Arc<kairos_providers::sealed::Keyring>,
) -> anyhow::Result<kairos_jobs::email::EmailWorker> {
    let templates = kairos_jobs::mail::EmailTemplates::load(config.email.templates_dir.as_deref())
        .context("the email templates (KAIROS_TEMPLATES_DIR) could not be loaded")?;
    let mailer = match &config.email.smtp_url {
        Some(url) => {
            let from = config.email.from.clone().unwrap_or_else(|| {
                tracing::warn!("KAIROS_EMAIL_FROM is not set; booking emails come from kairos@localhost");
                "Kairos <kairos@localhost>".to_string()
            });
            let url = url.parse().context("KAIROS_SMTP_URL is not usable")?;
            let ca = match &config.email.ca_file {
                Some(path) => Some(
                    std::fs::read(path)
                        .with_context(|| format!("KAIROS_SMTP_CA_FILE `{}` could not be read", path.display()))?,
                ),
                None => None,
            };
            let mailer = kairos_jobs::mail::Mailer::with_ca(url, &from, ca.as_deref())
                .context("KAIROS_SMTP_URL or KAIROS_SMTP_CA_FILE is not usable")?;
            Some(mailer)
        }
        None => {
            tracing::info!("no KAIROS_SMTP_URL: booking emails are recorded as skipped");
            // The worker's sweep skips whatever the store leaves pending.
            let _ = store.skip_emails_as_queued(kairos_jobs::email::NO_SMTP);
            None
        }
    };
    Ok(kairos_jobs::email::EmailWorker::new(store, config.background_clock.clone(), mailer, templates, keyring))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
