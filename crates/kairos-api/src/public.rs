//! What guards the pages anyone may open without a key (`/l/…`, `/p/…`, `/pay/…`): per-client
//! rate limits, and the double-submit cookie that keeps other sites from posting their forms.
//!
//! The client is the TCP peer's address, from [`ConnectInfo`] (the binary serves with
//! `into_make_service_with_connect_info`). `X-Forwarded-For` is believed only from the reverse
//! proxies the operator names ([`TrustedProxies`], `KAIROS_TRUSTED_PROXIES`): when the peer is
//! one of them, the client is the right-most address of that header that is not itself a
//! trusted proxy (what the nearest proxy saw; anything left of it the client may have
//! written). From any other peer the header is ignored, since anyone can send it. Without the
//! setting, every visitor behind a proxy shares the proxy's address and one quota. IPv6
//! clients are counted per /64 (one host can pick any address in its prefix). Limits are kept
//! per process: behind a balancer over N nodes a client may get up to N times the quota.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::{IpNet, Ipv4Net};
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

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The reverse proxies whose `X-Forwarded-For` names the client (`KAIROS_TRUSTED_PROXIES`:
/// comma-separated addresses and CIDR networks). Empty by default: the header is never read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// `10.0.0.1, 10.1.0.0/16, ::1, fd00::/8`; the error names the entry that is not one.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let network = match entry.parse::<IpNet>() {
                Ok(network) => network,
                Err(_) => entry
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("`{entry}` is not an IP address or a CIDR network such as 10.0.0.0/8"))?,
            };
            // An IPv4-mapped IPv6 network is its IPv4 network: peers are compared canonically.
            let network = match network {
                IpNet::V6(v6) => match v6.network().to_ipv4_mapped() {
                    Some(v4) if v6.prefix_len() >= 96 => {
                        IpNet::V4(Ipv4Net::new(v4, v6.prefix_len() - 96).map_err(|e| e.to_string())?)
                    }
                    _ => network,
                },
                v4 => v4,
            };
            networks.push(network.trunc());
        }
        Ok(Self(networks))
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that `peer` sent: `peer` itself unless it is a trusted
    /// proxy; then the right-most `X-Forwarded-For` address that is not a trusted proxy
    /// (every header of that name, in order, read as one list). An entry that is not an
    /// address stops the walk at the trusted hop after it, so a mangled header never gives
    /// its sender a fresh quota.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<String> = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let mut client = peer;
        for entry in forwarded.iter().flat_map(|v| v.split(',')).rev() {
            match forwarded_address(entry.trim()) {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) or in brackets.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

/// The client of a request: its peer, or whom a trusted proxy forwarded it for (when the
/// binary installed [`TrustedProxies`] with [`guard`]). Without connection info (a router
/// driven directly, as in some tests) every request counts as one unknown client.
fn client_of(req: &Request) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip());
    match req.extensions().get::<Arc<TrustedProxies>>() {
        Some(proxies) => proxies.client(peer, req.headers()),
        None => peer,
    }
}

/// Middleware: answers 429 with `Retry-After` (whole seconds) and a short page when the
/// client is over its quota.
pub async fn rate_limit(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    match limits.check(req.method(), client_of(&req)) {
        Ok(()) => next.run(req).await,
        Err(wait) => too_many(wait),
    }
}

fn too_many(wait: Duration) -> Response {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    metrics::counter!("kairos_public_rate_limited_total").increment(1);
    let mut response = crate::routes::pages::too_many_requests(seconds).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Where Stripe sends a customer back (`/pay/done`, `/pay/cancelled`, and the form that
/// releases an unpaid hold): public pages, limited like the booking pages.
const PAYMENT_PAGES: &str = "/pay/";

/// Middleware over the whole application: [`rate_limit`] for the payment return pages, and
/// nothing for any other path.
async fn limit_payment_pages(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with(PAYMENT_PAGES) {
        rate_limit(State(limits), req, next).await
    } else {
        next.run(req).await
    }
}

/// What the binary wraps the whole application in: `proxies` (whose `X-Forwarded-For` every
/// public page's limit reads the client from) and the limit of the payment return pages.
pub fn guard(app: axum::Router, proxies: TrustedProxies) -> axum::Router {
    app.layer(from_fn_with_state(Arc::new(Limits::default()), limit_payment_pages))
        .layer(axum::Extension(Arc::new(proxies)))
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

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn trusted_proxies_are_addresses_and_networks() {
        let proxies: TrustedProxies = " 10.0.0.0/8, 192.0.2.1 ,fd00::/8,::1".parse().unwrap();
        for ip in ["10.1.2.3", "192.0.2.1", "fd12::1", "::1", "::ffff:10.9.9.9"] {
            assert!(proxies.trusts(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["11.0.0.1", "192.0.2.2", "fe80::1", "::2"] {
            assert!(!proxies.trusts(ip.parse().unwrap()), "{ip}");
        }
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert!("0.0.0.0/0".parse::<TrustedProxies>().unwrap().trusts("203.0.113.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.1/x", "::/129"] {
            let e = bad.parse::<TrustedProxies>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_forwarded_address_and_only_from_a_trusted_peer() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy = ip("10.0.0.5");
        // What a client wrote itself stays left of what the proxy saw.
        let h = forwarded(&["198.51.100.7, 203.0.113.9"]);
        assert_eq!(proxies.client(proxy, &h), ip("203.0.113.9"));
        // A chain of trusted proxies is walked past; several headers are one list.
        let h = forwarded(&["198.51.100.7", "203.0.113.9, 10.2.0.1", "10.3.0.1"]);
        assert_eq!(proxies.client(proxy, &h), ip("203.0.113.9"));
        // From anyone else the header means nothing.
        assert_eq!(proxies.client(ip("203.0.113.50"), &h), ip("203.0.113.50"));
        assert_eq!(TrustedProxies::default().client(proxy, &h), proxy);
        // No header, or only proxies in it: the furthest proxy.
        assert_eq!(proxies.client(proxy, &HeaderMap::new()), proxy);
        assert_eq!(proxies.client(proxy, &forwarded(&["10.9.0.1, 10.8.0.1"])), ip("10.9.0.1"));
        // Ports and brackets are read; junk stops the walk at the trusted hop after it.
        assert_eq!(proxies.client(proxy, &forwarded(&["[2001:db8::1]:4711"])), ip("2001:db8::1"));
        assert_eq!(proxies.client(proxy, &forwarded(&["203.0.113.9:80"])), ip("203.0.113.9"));
        assert_eq!(proxies.client(proxy, &forwarded(&["203.0.113.9, unknown"])), proxy);
        assert_eq!(proxies.client(proxy, &forwarded(&["203.0.113.9, garbage, 10.2.0.1"])), ip("10.2.0.1"));
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
