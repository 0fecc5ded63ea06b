//! Wiring the calendar providers from configuration: the keyring that seals their
//! credentials, and the Google and Microsoft OAuth clients with their API adapters.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kairos_jobs::provider_sync::{OAuthProvider, Providers, caldav_factory};
use kairos_providers::oauth::OAuthApp;
use kairos_providers::sealed::Keyring;

use crate::Config;

/// The providers `config` enables (CalDAV always; Google and Microsoft with a client id).
pub fn configure(config: &Config) -> anyhow::Result<Providers> {
    let keyring = Arc::new(keyring(config)?);
    let client = kairos_jobs::egress::client(Duration::from_secs(30), config.calendars.allow_private)
        .context("could not build the provider HTTP client")?;
    let google = config.google.as_ref().map(|g| {
        Arc::new(OAuthProvider {
            app: OAuthApp::google(
                g.client_id.clone(),
                g.client_secret.clone(),
                g.auth_url.clone(),
                g.token_url.clone(),
                g.revoke_url.clone(),
            ),
            api: Arc::new(kairos_providers::google::Google::new(client.clone(), g.api_url.clone())),
        })
    });
    let microsoft = match &config.microsoft {
        Some(m) => Some(Arc::new(OAuthProvider {
            app: OAuthApp::microsoft(m.client_id.clone(), m.client_secret.clone(), &m.login_url, &m.tenant)
                .context("KAIROS_MICROSOFT_LOGIN_URL and KAIROS_MICROSOFT_TENANT must form a URL")?,
            api: Arc::new(kairos_providers::microsoft::Microsoft::new(client.clone(), m.graph_url.clone())),
        })),
        None => None,
    };
    // Providers call back only where they can: an https public URL, or anything in
    // development (KAIROS_ALLOW_PRIVATE_URLS).
    let public = url::Url::parse(&config.public_url)
        .with_context(|| format!("KAIROS_PUBLIC_URL must be a URL, not `{}`", config.public_url))?;
    let push_base = (public.scheme() == "https" || config.calendars.allow_private).then_some(public);
    Ok(Providers { keyring, google, microsoft, caldav: Some(caldav_factory()), push_base })
}

/// `KAIROS_SECRET_KEY`, or a development key kept beside the SQLite database (made on first
/// start, with a warning: production sets the key, and keeps it out of the database backups).
fn keyring(config: &Config) -> anyhow::Result<Keyring> {
    if let Some(key) = &config.secret_key {
        return Keyring::parse(key).context("KAIROS_SECRET_KEY is not usable");
    }
    anyhow::ensure!(
        !crate::is_postgres(&config.database_url),
        "KAIROS_SECRET_KEY must be set with PostgreSQL: every node must seal provider tokens with the same key \
         (for example 32 random bytes in base64: `openssl rand -base64 32`)"
    );
    let path = dev_key_path(config)?;
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keyring::generate_secret();
            write_private(&path, &key).with_context(|| format!("could not write {}", path.display()))?;
            key
        }
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    tracing::warn!(
        path = %path.display(),
        "KAIROS_SECRET_KEY is not set: provider tokens are sealed with a development key kept in this file; set \
         KAIROS_SECRET_KEY in production"
    );
    Keyring::parse(&key).with_context(|| format!("the development key in {} is not usable", path.display()))
}

fn dev_key_path(config: &Config) -> anyhow::Result<PathBuf> {
    let db = kairos_store_sqlite::path_of(&config.database_url)?;
    let dir = db.parent().map(PathBuf::from).unwrap_or_default();
    Ok(dir.join("kairos-secret.key"))
}

fn write_private(path: &std::path::Path, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(key.as_bytes())?;
    file.write_all(b"\n")
}
