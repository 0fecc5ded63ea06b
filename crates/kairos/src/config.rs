//! Configuration, read once from the environment at start-up (see README's table).

use std::time::Duration;

use anyhow::Context;
use kairos_core::webhook::RetrySchedule;
use kairos_jobs::DeliveryConfig;
use kairos_jobs::calendar_sync::SyncConfig;
use kairos_store::Clock;

/// Everything `kairos serve` needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// `KAIROS_DATABASE_URL`, default `sqlite://kairos.db`.
    pub database_url: String,
    /// `KAIROS_BIND`, default `127.0.0.1:3001`.
    pub bind: String,
    /// `KAIROS_PUBLIC_URL`: the address browsers and providers reach; defaults to `http://{bind}`.
    pub public_url: String,
    /// `KAIROS_SQLITE_SYNCHRONOUS=full` also survives power loss, at an fsync per commit.
    pub sqlite_synchronous_full: bool,
    /// Webhook delivery: `KAIROS_WEBHOOK_RETRY_SCHEDULE`, `KAIROS_WEBHOOK_TIMEOUT`,
    /// `KAIROS_ALLOW_PRIVATE_URLS`, `KAIROS_WEBHOOK_ENDPOINT_CONCURRENCY`,
    /// `KAIROS_WEBHOOK_MAX_IN_FLIGHT`.
    pub webhooks: DeliveryConfig,
    /// `KAIROS_WEBHOOK_RETENTION`, default 7 days: how long delivery history is kept.
    pub webhook_retention: jiff::SignedDuration,
    /// Calendar feeds: `KAIROS_CALENDAR_SYNC_INTERVAL` (15m), `KAIROS_TENTATIVE_IS_BUSY`
    /// (true), and `KAIROS_ALLOW_PRIVATE_URLS`.
    pub calendars: SyncConfig,
    /// The clock background work (delivery, retries, sweeps) runs on: the system clock.
    /// Tests that fix the API's clock run this one from the same instant.
    pub background_clock: Clock,
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
            webhooks: DeliveryConfig::default(),
            webhook_retention: DEFAULT_RETENTION,
            calendars: SyncConfig::default(),
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
        Ok(Self {
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
