//! Configuration, read once from the environment at start-up (see README's table).

use anyhow::Context;

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
}

impl Config {
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
        Ok(Self {
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
