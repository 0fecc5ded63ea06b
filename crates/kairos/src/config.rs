//! Configuration, read once from the environment at start-up (see README's table).

use std::time::Duration;

use anyhow::Context;
use kairos_core::webhook::RetrySchedule;
use kairos_jobs::DeliveryConfig;
use kairos_jobs::calendar_sync::SyncConfig;
use kairos_store::Clock;

/// Everything `kairos serve` needs to know.
#[derive(Clone)]
pub struct Config {
    /// `KAIROS_DATABASE_URL`, default `sqlite://kairos.db`.
    pub database_url: String,
    /// `KAIROS_BIND`, default `127.0.0.1:3001`.
    pub bind: String,
    /// `KAIROS_PUBLIC_URL`: the address browsers and providers reach; defaults to `http://{bind}`.
    pub public_url: String,
    /// `KAIROS_SQLITE_SYNCHRONOUS=full` also survives power loss, at an fsync per commit.
    pub sqlite_synchronous_full: bool,
    /// PostgreSQL: `KAIROS_DATABASE_MAX_CONNECTIONS` (16) per node, and
    /// `KAIROS_DATABASE_STATEMENT_TIMEOUT` (10s), past which PostgreSQL cancels a statement.
    pub pg_max_connections: u32,
    pub pg_statement_timeout: Duration,
    /// Webhook delivery: `KAIROS_WEBHOOK_RETRY_SCHEDULE`, `KAIROS_WEBHOOK_TIMEOUT`,
    /// `KAIROS_ALLOW_PRIVATE_URLS`, `KAIROS_WEBHOOK_ENDPOINT_CONCURRENCY`,
    /// `KAIROS_WEBHOOK_MAX_IN_FLIGHT`.
    pub webhooks: DeliveryConfig,
    /// `KAIROS_WEBHOOK_RETENTION`, default 7 days: how long delivery history is kept.
    pub webhook_retention: jiff::SignedDuration,
    /// Calendar feeds: `KAIROS_CALENDAR_SYNC_INTERVAL` (15m), `KAIROS_TENTATIVE_IS_BUSY`
    /// (true), and `KAIROS_ALLOW_PRIVATE_URLS`.
    pub calendars: SyncConfig,
    /// `KAIROS_SECRET_KEY`: seals provider tokens and signs OAuth state (comma-separated for
    /// rotation, the first one sealing). Unset: a development key kept beside the database.
    pub secret_key: Option<String>,
    /// `KAIROS_GOOGLE_*`: the Google OAuth client and endpoints; `None` without a client id.
    pub google: Option<GoogleConfig>,
    /// `KAIROS_MICROSOFT_*`: the Microsoft OAuth client and endpoints.
    pub microsoft: Option<MicrosoftConfig>,
    /// Email: `KAIROS_SMTP_URL` (unset: emails are recorded as skipped), `KAIROS_EMAIL_FROM`,
    /// `KAIROS_TEMPLATES_DIR` (files there replace the built-in templates of the same name).
    pub email: EmailConfig,
    /// `KAIROS_STRIPE_*`: paid bookings through Stripe Checkout; `None` without a secret key.
    pub stripe: Option<StripeConfig>,
    /// `KAIROS_TRUSTED_PROXIES`: the reverse proxies whose `X-Forwarded-For` names the client
    /// of a public page (for its rate limit). Empty by default: the header is ignored.
    pub trusted_proxies: kairos_api::public::TrustedProxies,
    /// The clock background work (delivery, retries, sweeps) runs on: the system clock.
    /// Tests that fix the API's clock run this one from the same instant.
    pub background_clock: Clock,
}

/// Where and how booking emails are sent.
#[derive(Clone, Default)]
pub struct EmailConfig {
    /// `smtp://user:pass@host:587` (STARTTLS), `smtps://…:465`, or `smtp://host:port` without
    /// credentials for a local relay (plain).
    pub smtp_url: Option<String>,
    /// The `From` address, e.g. `Kairos <bookings@example.com>`.
    pub from: Option<String>,
    pub templates_dir: Option<std::path::PathBuf>,
    /// `KAIROS_SMTP_CA_FILE`: PEM certificates of authorities trusted for the SMTP server's
    /// certificate besides the system's (an internal CA).
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SMTP URL may carry a password.
        f.debug_struct("EmailConfig")
            .field("smtp", &self.smtp_url.is_some())
            .field("from", &self.from)
            .field("templates_dir", &self.templates_dir)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Stripe: the account's secret key, the webhook endpoint's signing secret, and the API
/// base (`KAIROS_STRIPE_API_BASE`, for tests).
#[derive(Clone)]
pub struct StripeConfig {
    pub secret_key: String,
    pub webhook_secret: Option<String>,
    pub api_base: url::Url,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base.as_str())
            .field("webhook_secret", &self.webhook_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// Google: an OAuth client (Google Cloud console) and the endpoints (real ones by default;
/// `KAIROS_GOOGLE_BASE_URL` points all of them at one emulator).
#[derive(Clone)]
pub struct GoogleConfig {
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: url::Url,
    pub token_url: url::Url,
    pub revoke_url: url::Url,
    pub api_url: url::Url,
}

impl std::fmt::Debug for GoogleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleConfig")
            .field("client_id", &self.client_id)
            .field("api_url", &self.api_url.as_str())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for MicrosoftConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicrosoftConfig")
            .field("client_id", &self.client_id)
            .field("tenant", &self.tenant)
            .field("graph_url", &self.graph_url.as_str())
            .finish_non_exhaustive()
    }
}

impl GoogleConfig {
    /// The real endpoints, or all under `base` (an emulator).
    pub fn new(client_id: String, client_secret: String, base: Option<&str>) -> anyhow::Result<Self> {
        let url = |real: &str, path: &str| -> anyhow::Result<url::Url> {
            let text = match base {
                Some(base) => format!("{}{path}", base.trim_end_matches('/')),
                None => real.to_string(),
            };
            url::Url::parse(&text).with_context(|| format!("`{text}` is not a URL"))
        };
        Ok(Self {
            client_id,
            client_secret,
            auth_url: url("https://accounts.google.com/o/oauth2/v2/auth", "/o/oauth2/v2/auth")?,
            token_url: url("https://oauth2.googleapis.com/token", "/token")?,
            revoke_url: url("https://oauth2.googleapis.com/revoke", "/revoke")?,
            api_url: url("https://www.googleapis.com", "")?,
        })
    }
}

/// Microsoft: an app registration (Entra ID) and the endpoints.
#[derive(Clone)]
pub struct MicrosoftConfig {
    pub client_id: String,
    pub client_secret: String,
    pub login_url: url::Url,
    pub tenant: String,
    pub graph_url: url::Url,
}

impl MicrosoftConfig {
    pub fn new(client_id: String, client_secret: String, base: Option<&str>) -> anyhow::Result<Self> {
        let url = |real: &str| -> anyhow::Result<url::Url> {
            let text = base.map_or_else(|| real.to_string(), |b| b.trim_end_matches('/').to_string());
            url::Url::parse(&text).with_context(|| format!("`{text}` is not a URL"))
        };
        Ok(Self {
            client_id,
            client_secret,
            login_url: url("https://login.microsoftonline.com")?,
            tenant: "common".into(),
            graph_url: url("https://graph.microsoft.com")?,
        })
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url)
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "(set)"))
            .field("google", &self.google)
            .field("microsoft", &self.microsoft)
            .finish_non_exhaustive()
    }
}

const DEFAULT_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);

/// Parses a duration such as `500ms`, `2s`, `1m`, `1h` or `7d` (a day is 24 hours here).
pub fn parse_duration(name: &str, text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let fix = || format!("{name} takes durations such as 500ms, 2s, 1m, 1h or 7d, not `{text}`");
    let parsed = match text.strip_suffix('d').and_then(|days| days.trim().parse::<u64>().ok()) {
        Some(days) => Duration::from_secs(days.checked_mul(86_400).with_context(fix)?),
        None => {
            let d: jiff::SignedDuration = text.parse().ok().with_context(fix)?;
            Duration::try_from(d).ok().with_context(fix)?
        }
    };
    Ok(parsed)
}

fn parse_schedule(text: &str) -> anyhow::Result<RetrySchedule> {
    let name = "KAIROS_WEBHOOK_RETRY_SCHEDULE";
    let delays = text
        .split(',')
        .map(|part| parse_duration(name, part).and_then(|d| Ok(jiff::SignedDuration::try_from(d)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    RetrySchedule::new(delays).with_context(|| format!("{name} must list non-negative delays, e.g. 1m,5m,30m"))
}

fn parse_bool(name: &str, text: &str) -> anyhow::Result<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => anyhow::bail!("{name} must be true or false, not `{text}`"),
    }
}

fn parse_count(name: &str, text: &str) -> anyhow::Result<usize> {
    match text.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => anyhow::bail!("{name} must be a whole number from 1 to 100000, not `{text}`"),
    }
}

impl Config {
    /// The defaults, on a given database and address (tests start from this).
    pub fn new(database_url: impl Into<String>, bind: impl Into<String>) -> Self {
        let bind = bind.into();
        Self {
            database_url: database_url.into(),
            public_url: format!("http://{bind}"),
            bind,
            sqlite_synchronous_full: false,
            pg_max_connections: 16,
            pg_statement_timeout: Duration::from_secs(10),
            webhooks: DeliveryConfig::default(),
            webhook_retention: DEFAULT_RETENTION,
            calendars: SyncConfig::default(),
            secret_key: None,
            google: None,
            microsoft: None,
            email: EmailConfig::default(),
            stripe: None,
            trusted_proxies: Default::default(),
            background_clock: Clock::system(),
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let bind = var("KAIROS_BIND").unwrap_or_else(|| "127.0.0.1:3001".to_string());
        bind.parse::<std::net::SocketAddr>()
            .with_context(|| format!("KAIROS_BIND must be an address and port such as 127.0.0.1:3001, not `{bind}`"))?;
        let synchronous = var("KAIROS_SQLITE_SYNCHRONOUS").unwrap_or_else(|| "normal".to_string());
        let sqlite_synchronous_full = match synchronous.to_ascii_lowercase().as_str() {
            "normal" => false,
            "full" => true,
            other => anyhow::bail!("KAIROS_SQLITE_SYNCHRONOUS must be `normal` or `full`, not `{other}`"),
        };
        let pg_max_connections = match var("KAIROS_DATABASE_MAX_CONNECTIONS") {
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (2..=1000).contains(&n) => n,
                _ => {
                    anyhow::bail!("KAIROS_DATABASE_MAX_CONNECTIONS must be a whole number from 2 to 1000, not `{text}`")
                }
            },
            None => 16,
        };
        let pg_statement_timeout = match var("KAIROS_DATABASE_STATEMENT_TIMEOUT") {
            Some(text) => {
                let d = parse_duration("KAIROS_DATABASE_STATEMENT_TIMEOUT", &text)?;
                anyhow::ensure!(
                    d >= Duration::from_millis(100),
                    "KAIROS_DATABASE_STATEMENT_TIMEOUT must be at least 100ms, not `{text}`"
                );
                d
            }
            None => Duration::from_secs(10),
        };
        let mut webhooks = DeliveryConfig::default();
        if let Some(text) = var("KAIROS_WEBHOOK_RETRY_SCHEDULE") {
            webhooks.retry = parse_schedule(&text)?;
        }
        if let Some(text) = var("KAIROS_WEBHOOK_TIMEOUT") {
            webhooks.timeout = parse_duration("KAIROS_WEBHOOK_TIMEOUT", &text)?;
            anyhow::ensure!(!webhooks.timeout.is_zero(), "KAIROS_WEBHOOK_TIMEOUT must be more than zero");
        }
        if let Some(text) = var("KAIROS_ALLOW_PRIVATE_URLS") {
            webhooks.allow_private = parse_bool("KAIROS_ALLOW_PRIVATE_URLS", &text)?;
        }
        if let Some(text) = var("KAIROS_WEBHOOK_ENDPOINT_CONCURRENCY") {
            webhooks.per_endpoint = parse_count("KAIROS_WEBHOOK_ENDPOINT_CONCURRENCY", &text)?;
        }
        if let Some(text) = var("KAIROS_WEBHOOK_MAX_IN_FLIGHT") {
            webhooks.max_in_flight = parse_count("KAIROS_WEBHOOK_MAX_IN_FLIGHT", &text)?;
        }
        let webhook_retention = match var("KAIROS_WEBHOOK_RETENTION") {
            Some(text) => jiff::SignedDuration::try_from(parse_duration("KAIROS_WEBHOOK_RETENTION", &text)?)?,
            None => DEFAULT_RETENTION,
        };
        let mut calendars = SyncConfig { allow_private: webhooks.allow_private, ..SyncConfig::default() };
        if let Some(text) = var("KAIROS_CALENDAR_SYNC_INTERVAL") {
            calendars.every = parse_duration("KAIROS_CALENDAR_SYNC_INTERVAL", &text)?;
            anyhow::ensure!(
                calendars.every >= Duration::from_secs(1),
                "KAIROS_CALENDAR_SYNC_INTERVAL must be at least 1s"
            );
        }
        if let Some(text) = var("KAIROS_TENTATIVE_IS_BUSY") {
            calendars.tentative_is_busy = parse_bool("KAIROS_TENTATIVE_IS_BUSY", &text)?;
        }
        let parse_url = |name: &str, text: String| -> anyhow::Result<url::Url> {
            url::Url::parse(&text).with_context(|| format!("{name} must be a URL, not `{text}`"))
        };
        let google = match (var("KAIROS_GOOGLE_CLIENT_ID"), var("KAIROS_GOOGLE_CLIENT_SECRET")) {
            (Some(id), Some(secret)) => {
                let mut g = GoogleConfig::new(id, secret, var("KAIROS_GOOGLE_BASE_URL").as_deref())?;
                if let Some(u) = var("KAIROS_GOOGLE_AUTH_URL") {
                    g.auth_url = parse_url("KAIROS_GOOGLE_AUTH_URL", u)?;
                }
                if let Some(u) = var("KAIROS_GOOGLE_TOKEN_URL") {
                    g.token_url = parse_url("KAIROS_GOOGLE_TOKEN_URL", u)?;
                }
                if let Some(u) = var("KAIROS_GOOGLE_REVOKE_URL") {
                    g.revoke_url = parse_url("KAIROS_GOOGLE_REVOKE_URL", u)?;
                }
                if let Some(u) = var("KAIROS_GOOGLE_API_URL") {
                    g.api_url = parse_url("KAIROS_GOOGLE_API_URL", u)?;
                }
                Some(g)
            }
            (None, None) => None,
            _ => anyhow::bail!("set both KAIROS_GOOGLE_CLIENT_ID and KAIROS_GOOGLE_CLIENT_SECRET, or neither"),
        };
        let microsoft = match (var("KAIROS_MICROSOFT_CLIENT_ID"), var("KAIROS_MICROSOFT_CLIENT_SECRET")) {
            (Some(id), Some(secret)) => {
                let mut m = MicrosoftConfig::new(id, secret, var("KAIROS_MICROSOFT_BASE_URL").as_deref())?;
                if let Some(u) = var("KAIROS_MICROSOFT_LOGIN_URL") {
                    m.login_url = parse_url("KAIROS_MICROSOFT_LOGIN_URL", u)?;
                }
                if let Some(u) = var("KAIROS_MICROSOFT_GRAPH_URL") {
                    m.graph_url = parse_url("KAIROS_MICROSOFT_GRAPH_URL", u)?;
                }
                if let Some(tenant) = var("KAIROS_MICROSOFT_TENANT") {
                    m.tenant = tenant;
                }
                Some(m)
            }
            (None, None) => None,
            _ => anyhow::bail!("set both KAIROS_MICROSOFT_CLIENT_ID and KAIROS_MICROSOFT_CLIENT_SECRET, or neither"),
        };
        let email = EmailConfig {
            smtp_url: var("KAIROS_SMTP_URL"),
            from: var("KAIROS_EMAIL_FROM"),
            templates_dir: var("KAIROS_TEMPLATES_DIR").map(std::path::PathBuf::from),
            ca_file: var("KAIROS_SMTP_CA_FILE").map(std::path::PathBuf::from),
        };
        if let Some(dir) = &email.templates_dir {
            anyhow::ensure!(dir.is_dir(), "KAIROS_TEMPLATES_DIR must be a directory, not `{}`", dir.display());
        }
        if let Some(file) = &email.ca_file {
            anyhow::ensure!(file.is_file(), "KAIROS_SMTP_CA_FILE must be a PEM file, not `{}`", file.display());
            anyhow::ensure!(email.smtp_url.is_some(), "KAIROS_SMTP_CA_FILE is set but KAIROS_SMTP_URL is not");
        }
        let trusted_proxies = match var("KAIROS_TRUSTED_PROXIES") {
            Some(text) => text.parse().map_err(|e| anyhow::anyhow!("KAIROS_TRUSTED_PROXIES: {e}"))?,
            None => Default::default(),
        };
        let stripe = match var("KAIROS_STRIPE_SECRET_KEY") {
            Some(secret_key) => {
                anyhow::ensure!(
                    secret_key.starts_with("sk_") || secret_key.starts_with("rk_"),
                    "KAIROS_STRIPE_SECRET_KEY must be a Stripe secret key (sk_test_…, sk_live_… or rk_…)"
                );
                let webhook_secret = var("KAIROS_STRIPE_WEBHOOK_SECRET");
                if let Some(w) = &webhook_secret {
                    anyhow::ensure!(w.starts_with("whsec_"), "KAIROS_STRIPE_WEBHOOK_SECRET must start with whsec_");
                }
                let api_base = parse_url(
                    "KAIROS_STRIPE_API_BASE",
                    var("KAIROS_STRIPE_API_BASE").unwrap_or_else(|| "https://api.stripe.com".into()),
                )?;
                Some(StripeConfig { secret_key, webhook_secret, api_base })
            }
            None => {
                anyhow::ensure!(
                    var("KAIROS_STRIPE_WEBHOOK_SECRET").is_none(),
                    "KAIROS_STRIPE_WEBHOOK_SECRET is set but KAIROS_STRIPE_SECRET_KEY is not; set both"
                );
                None
            }
        };
        let secret_key = var("KAIROS_SECRET_KEY");
        if let Some(key) = &secret_key {
            kairos_providers::sealed::Keyring::parse(key).context("KAIROS_SECRET_KEY is not usable")?;
        }
        Ok(Self {
            secret_key,
            email,
            stripe,
            trusted_proxies,
            google,
            microsoft,
            webhooks,
            webhook_retention,
            calendars,
            background_clock: Clock::system(),
            database_url: var("KAIROS_DATABASE_URL").unwrap_or_else(|| "sqlite://kairos.db".to_string()),
            public_url: var("KAIROS_PUBLIC_URL")
                .unwrap_or_else(|| format!("http://{bind}"))
                .trim_end_matches('/')
                .to_string(),
            bind,
            sqlite_synchronous_full,
            pg_max_connections,
            pg_statement_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_contract_forms() {
        assert_eq!(parse_duration("X", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("X", "2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("X", "1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("X", "7d").unwrap(), Duration::from_secs(7 * 86_400));
        let e = parse_duration("KAIROS_WEBHOOK_TIMEOUT", "soon").unwrap_err().to_string();
        assert!(e.contains("KAIROS_WEBHOOK_TIMEOUT") && e.contains("`soon`"), "{e}");
        assert!(parse_duration("X", "-1s").is_err());
    }

    #[test]
    fn the_retry_schedule_is_a_list_of_delays() {
        let s = parse_schedule("1m,5m,30m").unwrap();
        assert_eq!(s, RetrySchedule::default());
        assert_eq!(parse_schedule("100ms").unwrap().attempts(), 2);
        assert!(parse_schedule("1m,,5m").is_err());
    }
}
