//! Push notifications from providers: opening a channel for each synced calendar (Google
//! watch channels, Graph subscriptions), renewing them before they lapse, and turning a
//! notification into "sync this connection now".
//!
//! A notification carries no API key; it is trusted only through the channel's token (Google
//! `X-Goog-Channel-Token`, Graph `clientState`), of which the store keeps a SHA-256 hash
//! compared in constant time. It says only that something changed: the sync that follows
//! reads what, through the authenticated API.

use std::time::Duration;

use jiff::SignedDuration;
use kairos_providers::Channel;
use kairos_store::{CalendarConnection, PushChannel, StoreError, Tenant};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::calendar_sync::{SYNC_LEASE, sync_lease_key};
use crate::lease::Lease;
use crate::provider_sync::{CredentialError, ProviderSync};

/// Channels are renewed when they have less than this left.
pub const RENEW_BEFORE: SignedDuration = SignedDuration::from_hours(24);
/// How long a renewal asked for out of turn (a Graph `reauthorizationRequired`) waits for a
/// sync or renewal of its connection running elsewhere.
const RENEW_WAIT: Duration = Duration::from_secs(30);

/// How long a channel is asked for: Google keeps channels about a week; Graph caps event
/// subscriptions at 4,230 minutes, so ask for less.
pub fn lifetime(provider: &str) -> SignedDuration {
    match provider {
        "microsoft" => SignedDuration::from_mins(4_000),
        _ => SignedDuration::from_hours(7 * 24),
    }
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` is the channel's (constant time).
pub fn token_matches(channel: &PushChannel, token: &str) -> bool {
    let given = token_hash(token);
    subtle::ConstantTimeEq::ct_eq(given.as_bytes(), channel.token_hash.as_bytes()).into()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl ProviderSync {
    /// Where a provider's notifications arrive, when push is on.
    fn push_address(&self, provider: &str) -> Option<String> {
        let base = self.providers().push_base.as_ref()?;
        Some(format!("{}/v1/providers/{provider}/notifications", base.as_str().trim_end_matches('/')))
    }

    /// Opens a channel for each selected calendar of an OAuth connection that has none. The
    /// caller holds the connection's sync lease (a sync, or a renewal), so two nodes never open
    /// two channels for one calendar.
    pub async fn ensure_push(&self, t: &Tenant, conn: &CalendarConnection) -> Result<usize, StoreError> {
        let Some(address) = self.push_address(&conn.provider) else { return Ok(0) };
        if self.providers().oauth(&conn.provider).is_none() {
            return Ok(0);
        }
        let open = self.store().push_channels(t, &conn.id).await?;
        let wanted: Vec<_> = self
            .store()
            .calendars(t, Some(&conn.user_id))
            .await?
            .into_iter()
            .filter(|c| c.connection_id == conn.id && c.selected && !open.iter().any(|ch| ch.calendar_id == c.id))
            .collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let Ok(adapter) = self.adapter(conn) else { return Ok(0) };
        let credentials = match self.credentials(t, conn, false).await {
            Ok(c) => c,
            Err(CredentialError::Store(e)) => return Err(e),
            Err(_) => return Ok(0),
        };
        let mut opened = 0;
        for calendar in wanted {
            let Some(remote_id) = calendar.remote_id.as_deref() else { continue };
            let token = new_token();
            let now = self.clock().now();
            let expires_at = now.saturating_add(lifetime(&conn.provider)).unwrap_or(now);
            match adapter.watch(&credentials, remote_id, &address, &token, expires_at).await {
                Ok(Some(channel)) => {
                    let saved = PushChannel {
                        id: channel.id,
                        connection_id: conn.id.clone(),
                        calendar_id: calendar.id.clone(),
                        provider: conn.provider.clone(),
                        resource_id: channel.resource_id,
                        token_hash: token_hash(&token),
                        expires_at: channel.expires_at,
                        created_at: now,
                    };
                    self.store().save_push_channel(t, &saved).await?;
                    opened += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(connection = %conn.id, calendar = %calendar.id, error = %e, "opening a push channel failed")
                }
            }
        }
        Ok(opened)
    }

    /// Renews channels that lapse within [`RENEW_BEFORE`]; returns how many.
    pub async fn renew_expiring(&self, limit: usize) -> Result<usize, StoreError> {
        let now = self.clock().now();
        let before = now.saturating_add(RENEW_BEFORE).unwrap_or(now);
        let mut renewed = 0;
        for (t, channel) in self.store().expiring_push_channels(before, limit).await? {
            // Every node sees the same expiring channels; one renews each, and a connection
            // being synced right now is left for the next round.
            if self.renew_leased(&t, &channel, Duration::ZERO).await? {
                renewed += 1;
            }
        }
        Ok(renewed)
    }

    /// Renews one channel: Graph extends a subscription in place; a Google channel cannot be
    /// extended, so a new one is opened (with a new token) and the old one stopped. Runs under
    /// its connection's sync lease, waiting up to 30 s for a sync or renewal running elsewhere;
    /// false when the lease stayed taken, the channel was renewed or dropped meanwhile, or it
    /// could not be renewed (then it is dropped; the connection's next sync opens a new one).
    pub async fn renew(&self, t: &Tenant, channel: &PushChannel) -> Result<bool, StoreError> {
        self.renew_leased(t, channel, RENEW_WAIT).await
    }

    /// A renewal opens channels as a sync does, so it holds the same lease: two nodes renewing
    /// one channel, or one renewing while another syncs, would open two channels for one
    /// calendar. Once the lease is ours the channel is read again: the caller's copy may
    /// predate another node's renewal (which replaced or extended it).
    async fn renew_leased(&self, t: &Tenant, channel: &PushChannel, wait: Duration) -> Result<bool, StoreError> {
        let key = sync_lease_key(&channel.connection_id);
        let Some(_lease) = Lease::take(self.store(), self.clock(), key, SYNC_LEASE, wait).await? else {
            tracing::debug!(channel = %channel.id, "the connection is busy elsewhere; renewing later");
            return Ok(false);
        };
        match self.store().push_channel(&channel.id).await? {
            Some((_, current)) if current.expires_at == channel.expires_at => self.renew_now(t, &current).await,
            _ => {
                tracing::debug!(channel = %channel.id, "renewed or dropped by another node meanwhile");
                Ok(false)
            }
        }
    }

    /// [`ProviderSync::renew`]'s work, once the caller holds the connection's sync lease.
    async fn renew_now(&self, t: &Tenant, channel: &PushChannel) -> Result<bool, StoreError> {
        let conn =
            self.store().calendar_connections(t, None).await?.into_iter().find(|c| c.id == channel.connection_id);
        let Some(conn) = conn else {
            self.store().delete_push_channel(t, &channel.id).await?;
            return Ok(false);
        };
        // A channel that cannot be renewed (no adapter, no usable grant) is dropped, never left
        // to block the renewal of others; the connection's next good sync opens a new one.
        let adapter = match self.adapter(&conn) {
            Ok(adapter) if conn.status != "needs_reauth" => adapter,
            _ => {
                self.store().delete_push_channel(t, &channel.id).await?;
                return Ok(false);
            }
        };
        let credentials = match self.credentials(t, &conn, false).await {
            Ok(credentials) => credentials,
            Err(CredentialError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(channel = %channel.id, error = ?e, "cannot renew a push channel without credentials; dropping it");
                self.store().delete_push_channel(t, &channel.id).await?;
                return Ok(false);
            }
        };
        let now = self.clock().now();
        let expires_at = now.saturating_add(lifetime(&conn.provider)).unwrap_or(now);
        let current = Channel {
            id: channel.id.clone(),
            resource_id: channel.resource_id.clone(),
            expires_at: channel.expires_at,
        };
        if conn.provider != "microsoft" {
            // Open the new one before stopping the old, so no change goes unheard.
            self.store().delete_push_channel(t, &channel.id).await?;
            let opened = self.ensure_push(t, &conn).await?;
            if let Err(e) = adapter.stop(&credentials, &current).await {
                tracing::warn!(channel = %channel.id, error = %e, "stopping a replaced push channel failed");
            }
            return Ok(opened > 0);
        }
        match adapter.renew(&credentials, &current, expires_at).await {
            Ok(renewed) => {
                let saved = PushChannel { expires_at: renewed.expires_at, ..channel.clone() };
                self.store().save_push_channel(t, &saved).await?;
                metrics::counter!("kairos_push_renewals_total", "provider" => conn.provider.clone()).increment(1);
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(channel = %channel.id, error = %e, "renewing a push channel failed; opening a new one");
                self.store().delete_push_channel(t, &channel.id).await?;
                let _ = adapter.stop(&credentials, &current).await;
                Ok(self.ensure_push(t, &conn).await? > 0)
            }
        }
    }

    /// A notification for `channel_id` with `token`: if they match, the connection is due
    /// now. Returns whether it was accepted.
    pub async fn notified(&self, channel_id: &str, token: &str) -> Result<Option<(Tenant, PushChannel)>, StoreError> {
        let Some((t, channel)) = self.store().push_channel(channel_id).await? else {
            tracing::info!(channel = %channel_id, "a notification for an unknown channel; ignored");
            return Ok(None);
        };
        if !token_matches(&channel, token) {
            tracing::warn!(channel = %channel_id, "a notification with a wrong token; ignored");
            return Ok(None);
        }
        self.store().request_calendar_sync(&t, &channel.connection_id, self.clock().now()).await?;
        metrics::counter!("kairos_push_notifications_total", "provider" => channel.provider.clone()).increment(1);
        Ok(Some((t, channel)))
    }
}

/// Whether a Google resource state means the calendar changed (`sync` only confirms the
/// channel).
pub fn google_state_changes(state: &str) -> bool {
    matches!(state, "exists" | "not_exists")
}
