//! What guards the pages anyone may open without a key (`/l/…`): per-client rate limits, and
//! the double-submit cookie that keeps other sites from posting their forms.
//!
//! The client is the TCP peer's address, from [`ConnectInfo`] (the binary serves with
//! `into_make_service_with_connect_info`). `X-Forwarded-For` is never trusted, since anyone
//! can send it: behind a reverse proxy every visitor therefore shares the proxy's address and
//! one quota, unless the proxy limits on its own. IPv6 clients are counted per /64 (one
//! host can pick any address in its prefix). Limits are kept per process: behind a balancer
//! over N nodes a client may get up to N times the quota.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// Pages (GET): 120 a minute per client, 60 at once.
const PAGES_PER_MINUTE: u32 = 120;
const PAGES_BURST: u32 = 60;
/// Booking attempts (POST): 10 a minute per client, 5 at once.
const BOOKINGS_PER_MINUTE: u32 = 10;
const BOOKINGS_BURST: u32 = 5;
/// Every this many checks, clients whose quota has refilled are forgotten (the map of
/// clients would otherwise only grow).
const FORGET_EVERY: u64 = 4096;

fn quota(per_minute: u32, burst: u32) -> Quota {
    let n = |v: u32| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n(per_minute)).allow_burst(n(burst))
}

/// The rate limits of the public pages: one quota for reading pages, a smaller one for
/// booking.
pub struct Limits {
    pages: DefaultKeyedRateLimiter<IpAddr>,
    bookings: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("pages", &self.pages.len()).field("bookings", &self.bookings.len()).finish()
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(quota(PAGES_PER_MINUTE, PAGES_BURST), quota(BOOKINGS_PER_MINUTE, BOOKINGS_BURST))
    }
}

impl Limits {
    /// For proposal response links: answers (POST) share the generous page quota, since a
    /// poll's people may answer from one office address and the token, not the address,
    /// is the credential.
    pub fn for_responses() -> Self {
        Self::new(quota(PAGES_PER_MINUTE, PAGES_BURST), quota(PAGES_PER_MINUTE, PAGES_BURST))
    }

    pub fn new(pages: Quota, bookings: Quota) -> Self {
        Self { pages: RateLimiter::keyed(pages), bookings: RateLimiter::keyed(bookings), checks: AtomicU64::new(0) }
    }

    /// Counts one request of `client`: `Err` with how long to wait when it is over its quota.
    pub fn check(&self, method: &Method, client: IpAddr) -> Result<(), Duration> {
        let limiter = if method == Method::POST { &self.bookings } else { &self.pages };
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            for limiter in [&self.pages, &self.bookings] {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        limiter.check_key(&client_key(client)).map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Middleware: answers 429 with `Retry-After` (whole seconds) and a short page when the
/// client is over its quota. Without connection info (a router driven directly, as in some
/// tests) every request counts as one unknown client.
pub async fn rate_limit(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip());
    match limits.check(req.method(), client) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            metrics::counter!("kairos_public_rate_limited_total").increment(1);
            let mut response = crate::routes::pages::too_many_requests(seconds.max(1)).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
    }
}

/// The cookie that carries a form's CSRF token.
pub const CSRF_COOKIE: &str = "kairos_csrf";

/// A new CSRF token: 128 random bits in hex.
pub fn new_csrf_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn is_token(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The values of the request's cookies named `name` (a browser may send more than one cookie
/// of a name, e.g. set for different paths).
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// The well-formed CSRF tokens in the request's cookies.
fn csrf_cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    cookies(headers, CSRF_COOKIE).filter(|value| is_token(value))
}

/// The token to put in a form: the one the browser already has (so several open forms all
/// stay valid), or a new one.
pub fn csrf_token(headers: &HeaderMap) -> String {
    csrf_cookies(headers).next().map_or_else(new_csrf_token, str::to_string)
}

/// `Set-Cookie` for `token`: only for the pages under `path` (`/l/` booking pages, `/p/`
/// proposal responses), never readable by scripts, never sent with another site's request,
/// and only over https when the server is reached over https.
pub fn csrf_cookie(token: &str, path: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{CSRF_COOKIE}={token}; HttpOnly; SameSite=Strict; Path={path}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static("kairos_csrf=; Path=/"))
}

/// Whether the form's token matches the cookie's (in constant time).
pub fn csrf_matches(headers: &HeaderMap, submitted: Option<&str>) -> bool {
    let Some(submitted) = submitted.filter(|s| is_token(s)) else { return false };
    csrf_cookies(headers).any(|cookie| bool::from(cookie.as_bytes().ct_eq(submitted.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_form_token_must_equal_the_cookie() {
        let token = new_csrf_token();
        assert_eq!(token.len(), 32);
        assert_ne!(token, new_csrf_token());
        let headers = cookies(&format!("other=1; {CSRF_COOKIE}={token}"));
        assert!(csrf_matches(&headers, Some(&token)));
        assert_eq!(csrf_token(&headers), token, "an existing cookie is reused");
        assert!(!csrf_matches(&headers, Some(&new_csrf_token())));
        assert!(!csrf_matches(&headers, None));
        assert!(!csrf_matches(&HeaderMap::new(), Some(&token)), "no cookie");
        let malformed = cookies(&format!("{CSRF_COOKIE}=x"));
        assert!(!csrf_matches(&malformed, Some("x")), "a token must look like one");
        assert_ne!(csrf_token(&malformed), "x");
    }

    #[test]
    fn the_cookie_is_strict_and_secure_over_https() {
        let c = csrf_cookie("ab", "/l/", true);
        assert_eq!(c.to_str().unwrap(), "kairos_csrf=ab; HttpOnly; SameSite=Strict; Path=/l/; Secure");
        assert!(!csrf_cookie("ab", "/l/", false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn a_client_is_limited_after_its_burst_and_others_are_not() {
        let limits = Limits::new(quota(60, 2), quota(60, 1));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limits.check(&Method::GET, a).is_ok());
        assert!(limits.check(&Method::GET, a).is_ok());
        let wait = limits.check(&Method::GET, a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limits.check(&Method::GET, b).is_ok(), "another client has its own quota");
        assert!(limits.check(&Method::POST, a).is_ok(), "booking has its own quota");
        assert!(limits.check(&Method::POST, a).is_err());
    }

    #[test]
    fn ipv6_clients_count_per_prefix() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(client_key(one), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
