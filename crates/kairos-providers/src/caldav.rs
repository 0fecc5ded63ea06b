//! CalDAV (RFC 4791) with WebDAV sync (RFC 6578): any standards-following server — Radicale,
//! Nextcloud, Baïkal, SOGo, Fastmail — through one account URL and HTTP Basic credentials.
//!
//! - Calendar ids are the collections' absolute URLs; event ids are the resources' hrefs
//!   (absolute paths, percent-decoded and re-encoded one canonical way, so that two spellings
//!   of one href are one id).
//! - Every request stays on the account URL's origin: redirects and hrefs that lead elsewhere
//!   are refused (so accounts whose calendars live on another host, as iCloud's do, are not
//!   supported).
//! - Sync uses RFC 6578 sync-collection where the server has it (cursor `sync:<token>`; a
//!   refused token is [`ProviderError::CursorExpired`]), else the collection's ctag and its
//!   members' ETags (cursor `etags:…`, bounded; its format is documented in `cursor.rs`).
//! - CalDAV has no push: [`Provider::watch`] answers `None` and the caller polls;
//!   [`Provider::renew`] fails with `NotFound` and [`Provider::stop`] succeeds.
//!
//! A small client over the caller's reqwest client and quick-xml, rather than libdav (which
//! stack.md suggests): libdav drives a `tower::Service` that must answer hyper's own
//! `Response<Incoming>`, a body type only hyper's client can produce, so the SSRF-guarded
//! reqwest client Kairos passes to every provider could not be used, and a second HTTP client
//! with its own DNS and redirect policy would bypass that guard. What CalDAV needs here is six
//! requests and one XML shape (multistatus), which `xml` and `http` cover in a few hundred
//! lines.

mod busy;
mod cursor;
mod discovery;
mod draft;
mod http;
mod item;
mod sync;
mod write;
mod xml;

use async_trait::async_trait;
use jiff::Timestamp;
use url::Url;

use crate::{
    Channel, Credentials, EventDraft, Provider, ProviderError, ProviderResult, RemoteCalendar, RemoteItem, SyncResult,
};
use http::{Dav, as_collection, check_scheme, same_origin};

/// The property each synced VEVENT carries with its resource's href.
pub use item::REMOTE_ID;

/// One CalDAV account's server.
#[derive(Debug, Clone)]
pub struct CalDav {
    client: reqwest::Client,
    account: Url,
    sync_collection: bool,
}

impl CalDav {
    /// `account_url` is what the person gave: the server's root, their principal, their
    /// calendar home, or one calendar collection. `client` is used for every request (it
    /// carries Kairos's outbound-address policy).
    pub fn new(client: reqwest::Client, mut account_url: Url) -> Self {
        // Credentials travel in `Credentials` only: a user name or password in the URL would
        // otherwise end up in logs and error messages.
        let _ = account_url.set_username("");
        let _ = account_url.set_password(None);
        Self { client, account: account_url, sync_collection: true }
    }

    /// Never uses the sync-collection report, syncing by ctag and ETags instead: for servers
    /// that advertise the report but answer it wrongly. (Servers without it are detected.)
    pub fn without_sync_collection(mut self) -> Self {
        self.sync_collection = false;
        self
    }

    fn dav<'a>(&'a self, auth: &'a Credentials) -> Dav<'a> {
        Dav { client: &self.client, auth }
    }

    /// A calendar id as a collection URL of this account.
    fn collection(&self, calendar: &str) -> ProviderResult<Url> {
        let url =
            Url::parse(calendar).map_err(|_| ProviderError::NotFound(format!("{calendar} is not a calendar URL")))?;
        check_scheme(&url)?;
        if !same_origin(&url, &self.account) {
            return Err(ProviderError::NotFound(format!(
                "{calendar} is not on this account's server ({})",
                self.account
            )));
        }
        Ok(as_collection(url))
    }

    /// An event id (an href) as a URL within the calendar's origin.
    fn member(&self, collection: &Url, id: &str) -> ProviderResult<Url> {
        http::resolve(collection, id)
            .ok_or_else(|| ProviderError::NotFound(format!("{id} is not an event of {collection}")))
    }

    /// The account's own address, for ORGANIZER and for recognising its declined events:
    /// its user name when that is an email address.
    fn address(auth: &Credentials) -> Option<&str> {
        match auth {
            Credentials::Basic { username, .. }
                if username.contains('@') && !username.contains(char::is_whitespace) =>
            {
                Some(username)
            }
            _ => None,
        }
    }
}

#[async_trait]
impl Provider for CalDav {
    fn name(&self) -> &'static str {
        "caldav"
    }

    #[tracing::instrument(skip_all, fields(account = %self.account))]
    async fn list_calendars(&self, auth: &Credentials) -> ProviderResult<Vec<RemoteCalendar>> {
        check_scheme(&self.account)?;
        discovery::list(&self.dav(auth), &self.account).await
    }

    #[tracing::instrument(skip_all, fields(calendar = %calendar))]
    async fn sync(
        &self,
        auth: &Credentials,
        calendar: &str,
        cursor: Option<&str>,
        _window: kairos_core::Interval,
    ) -> ProviderResult<SyncResult> {
        let collection = self.collection(calendar)?;
        sync::sync(&self.dav(auth), &collection, cursor, self.sync_collection).await
    }

    #[tracing::instrument(skip_all)]
    async fn free_busy(
        &self,
        auth: &Credentials,
        calendars: &[String],
        window: kairos_core::Interval,
    ) -> ProviderResult<Vec<kairos_core::Interval>> {
        let urls = calendars.iter().map(|c| self.collection(c)).collect::<ProviderResult<Vec<_>>>()?;
        busy::busy(&self.dav(auth), &urls, window, Self::address(auth)).await
    }

    #[tracing::instrument(skip_all, fields(calendar = %calendar, uid = %draft.uid))]
    async fn create_event(&self, auth: &Credentials, calendar: &str, draft: &EventDraft) -> ProviderResult<RemoteItem> {
        let collection = self.collection(calendar)?;
        write::create(&self.dav(auth), &collection, draft, Self::address(auth)).await
    }

    #[tracing::instrument(skip_all, fields(calendar = %calendar, id = %id))]
    async fn update_event(
        &self,
        auth: &Credentials,
        calendar: &str,
        id: &str,
        etag: Option<&str>,
        draft: &EventDraft,
    ) -> ProviderResult<RemoteItem> {
        let collection = self.collection(calendar)?;
        let url = self.member(&collection, id)?;
        write::update_at(&self.dav(auth), &url, draft, etag, Self::address(auth), false).await
    }

    #[tracing::instrument(skip_all, fields(calendar = %calendar, id = %id))]
    async fn delete_event(
        &self,
        auth: &Credentials,
        calendar: &str,
        id: &str,
        etag: Option<&str>,
    ) -> ProviderResult<()> {
        let collection = self.collection(calendar)?;
        let url = self.member(&collection, id)?;
        write::delete(&self.dav(auth), &url, etag).await
    }

    /// CalDAV has no push notifications: the caller polls with [`Provider::sync`].
    async fn watch(
        &self,
        _auth: &Credentials,
        _calendar: &str,
        _address: &str,
        _token: &str,
        _expires_at: Timestamp,
    ) -> ProviderResult<Option<Channel>> {
        Ok(None)
    }

    /// There is never a CalDAV channel to renew: an error says so.
    async fn renew(&self, _auth: &Credentials, channel: &Channel, _expires_at: Timestamp) -> ProviderResult<Channel> {
        Err(ProviderError::NotFound(format!("CalDAV has no push channels (asked to renew {})", channel.id)))
    }

    /// Nothing to stop: succeeds, like stopping a channel that is already gone.
    async fn stop(&self, _auth: &Credentials, _channel: &Channel) -> ProviderResult<()> {
        Ok(())
    }
}
