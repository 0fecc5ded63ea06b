//! The connection pool, its settings, error mapping, and the notifications that wake other
//! nodes' workers.

use std::sync::Arc;
use std::time::Duration;

use kairos_store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection, PgPool};
use tokio::sync::Notify;

/// Channel that says "events were recorded" (the delivery workers dispatch them).
pub(crate) const EVENTS_CHANNEL: &str = "kairos_events";
/// Channel that says "deliveries were queued directly" (pings, redeliveries).
pub(crate) const DELIVERIES_CHANNEL: &str = "kairos_deliveries";

/// How the pool connects.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:pass@host:port/db?…`
    pub url: String,
    /// Connections this node keeps at most (2 at least). Its `LISTEN` connection is one of
    /// them, held for as long as the store is open; requests and workers share the rest.
    pub max_connections: u32,
    /// Longest a statement may run before PostgreSQL cancels it (`statement_timeout`, from
    /// `KAIROS_DATABASE_STATEMENT_TIMEOUT`). It is also every connection's `lock_timeout`,
    /// which has no setting of its own. A lock wait (a row lock, a booking's advisory locks
    /// behind a stuck transaction) happens inside a statement, so with the two equal the
    /// statement timeout is what ends a stuck wait (SQLSTATE 57014, `query_canceled`);
    /// `lock_timeout` is the backstop that keeps lock waits bounded should a statement's
    /// timeout be lifted (`SET LOCAL statement_timeout = 0`), failing with 55P03
    /// (`lock_not_available`). Either way a writer behind a stuck transaction fails after this
    /// long instead of queueing every other writer behind it; both are backend errors to callers.
    pub statement_timeout: Duration,
    /// Longest a request waits for a free connection.
    pub acquire_timeout: Duration,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            statement_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

fn connect_options(options: &PgOptions) -> Result<PgConnectOptions, StoreError> {
    let connect: PgConnectOptions = options
        .url
        .parse()
        .map_err(|e| StoreError::Backend(format!("KAIROS_DATABASE_URL is not a valid PostgreSQL URL: {e}")))?;
    Ok(connect.application_name("kairos"))
}

/// One connection for migrations, without the pool's timeouts: a step on a large table (an
/// index build, a rewrite) may rightly take longer than any request, and a node waits for
/// another node's migrations (sqlx's advisory lock) as long as they take.
pub(crate) async fn connect_for_migrations(options: &PgOptions) -> Result<PgConnection, StoreError> {
    connect_options(options)?
        .options([("statement_timeout", "0"), ("lock_timeout", "0")])
        .connect()
        .await
        .map_err(|e| StoreError::Backend(format!("connecting to PostgreSQL failed: {e}")))
}

pub(crate) async fn connect(options: &PgOptions) -> Result<PgPool, StoreError> {
    let connect = connect_options(options)?;
    let timeout = options.statement_timeout.as_millis().to_string();
    // Session settings of every pooled connection; `lock_timeout` is the statement timeout
    // (see [`PgOptions::statement_timeout`]).
    let connect = connect.options([("statement_timeout", timeout.as_str()), ("lock_timeout", timeout.as_str())]);
    PgPoolOptions::new()
        .max_connections(options.max_connections.max(2))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(|e| StoreError::Backend(format!("connecting to PostgreSQL failed: {e}")))
}

/// Maps a PostgreSQL failure: foreign-key violations become a missing reference, anything
/// else a backend failure.
pub(crate) fn error(e: sqlx::Error) -> StoreError {
    if code(&e).as_deref() == Some("23503") {
        return StoreError::NotFound;
    }
    StoreError::Backend(e.to_string())
}

/// Like [`error`], but a unique violation is a conflict on `field`.
pub(crate) fn unique(field: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| if code(&e).as_deref() == Some("23505") { StoreError::Conflict(field) } else { error(e) }
}

/// The SQLSTATE of a database error.
pub(crate) fn code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// True for the exclusion-constraint violation (SQLSTATE 23P01): one person's holding time
/// would overlap.
pub(crate) fn is_overlap(e: &sqlx::Error) -> bool {
    code(e).as_deref() == Some("23P01")
}

/// Tells every node (this one included) that work arrived, each time `outgoing` is signalled
/// after a commit. Deliberately outside the writing transaction: a `NOTIFY` inside one makes
/// PostgreSQL serialise every such commit on its notification queue lock (with the commit's
/// WAL flush inside it), which capped bookings at one per fsync. Signals that arrive while a
/// notification is being sent collapse into the next one.
pub(crate) fn forward(pool: PgPool, channel: &'static str, outgoing: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            outgoing.notified().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("SELECT pg_notify($1, '')").bind(channel).execute(&pool).await {
                // The other nodes' workers still poll: this delays their work, loses none.
                tracing::warn!(error = %e, channel, "NOTIFY failed");
            }
        }
    })
}

/// Forwards PostgreSQL notifications to this node's workers for as long as the pool lives,
/// reconnecting after failures. A lost notification only delays work: workers also poll.
pub(crate) fn listen(pool: PgPool, events: Arc<Notify>, deliveries: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if pool.is_closed() {
                return;
            }
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen_all([EVENTS_CHANNEL, DELIVERIES_CHANNEL]).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Anything sent while we were not listening: wake the workers once.
            events.notify_one();
            deliveries.notify_one();
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) if n.channel() == EVENTS_CHANNEL => events.notify_one(),
                    Ok(Some(_)) => deliveries.notify_one(),
                    Ok(None) => break, // the connection dropped; reconnect
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost");
                        break;
                    }
                }
            }
        }
    })
}
