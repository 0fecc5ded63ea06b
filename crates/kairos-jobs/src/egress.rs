//! SSRF guard for outgoing webhook requests: URL checks and an HTTP client that refuses private addresses.
//!
//! The check happens twice on purpose. [`check_url`] runs when a webhook is registered so the API
//! user gets an immediate, explanatory 422. But DNS answers can change afterwards (DNS rebinding),
//! so deliveries go through [`client`], whose resolver re-checks every address it hands to the
//! connector, plus [`check_target`] for IP literals, which never reach a resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Longest time spent establishing a TCP/TLS connection, however long the total timeout is:
/// a slow handshake is a sign of a black-holed target, not of a slow receiver.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a registration waits for DNS.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

const USER_AGENT: &str = concat!("Kairos-Webhooks/", env!("CARGO_PKG_VERSION"));

/// Why an outgoing URL is refused.
///
/// The messages are shown to API users (in a 422), so each says what was wrong and how to fix it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UrlRefusal {
    #[error("the URL is not valid ({0}); give an absolute URL such as https://example.com/webhook")]
    Malformed(String),
    #[error("the URL must use https, e.g. https://example.com/webhook")]
    NotHttps,
    #[error("the URL has no host; give an absolute URL such as https://example.com/webhook")]
    NoHost,
    #[error("{}", private_message(host, *addr))]
    PrivateAddress { host: String, addr: IpAddr },
    #[error(
        "the URL must not carry credentials (user:password@); receivers authenticate deliveries by their signatures"
    )]
    Credentials,
    #[error("`{host}` does not resolve to any address; check the host name and its DNS records")]
    Unresolvable { host: String },
}

fn private_message(host: &str, addr: IpAddr) -> String {
    // For an IP literal "`127.0.0.1` resolves to 127.0.0.1" would read as nonsense.
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    if literal == Some(addr) {
        format!("`{host}` is a private address; webhooks must reach a public address")
    } else {
        // The address itself is not shown: the message must not map an internal network.
        format!("`{host}` resolves to a private, loopback or link-local address; webhooks must reach a public address")
    }
}

/// `true` when `ip` is a globally routable unicast address a webhook may reach.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_documentation()
        || ip.is_multicast()
        // The rest are written by hand because `Ipv4Addr::is_shared`, `is_benchmarking`,
        // `is_reserved` and `is_global` are still unstable (feature `ip`).
        // 0.0.0.0/8: "this network"; Linux connects 0.0.0.0 to localhost.
        || a == 0
        // 100.64.0.0/10: carrier-grade NAT, i.e. someone's internal network.
        || (a == 100 && (b & 0xc0) == 64)
        // 192.0.0.0/24: IETF protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 192.88.99.0/24: deprecated 6to4 relay anycast.
        || (a == 192 && b == 88 && c == 99)
        // 198.18.0.0/15: benchmarking.
        || (a == 198 && (b & 0xfe) == 18)
        // 240.0.0.0/4: reserved, including the broadcast address.
        || a >= 240;
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();

    // Addresses that carry an IPv4 address end up at that IPv4 address, so they are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // ::ffff:0:0/96, IPv4-translated (RFC 2765, SIIT): translators deliver to the IPv4.
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    // 64:ff9b::/96, the well-known NAT64 prefix, is always /96, so the IPv4 is the last 32 bits.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    // 2002::/16, 6to4: the relay forwards to the IPv4 in bits 16..48.
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2]));
    }

    let refused = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local() // fc00::/7, includes AWS metadata fd00:ec2::254
        || ip.is_unicast_link_local() // fe80::/10
        // Written by hand because `Ipv6Addr::is_documentation`, `is_benchmarking` and
        // `is_global` are still unstable (feature `ip`).
        // ::/96, deprecated IPv4-compatible addresses: no legitimate use, and stacks that still
        // honour them would reach the embedded IPv4, so refuse outright.
        || s[..6] == [0; 6]
        // 64:ff9b:1::/48, local-use NAT64 (RFC 8215): the operator picks the prefix length, so
        // where the IPv4 sits (and thus which IPv4 is reached) cannot be known from here.
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        // 2001::/32, Teredo: tunnels to an address we cannot judge reliably.
        || (s[0] == 0x2001 && s[1] == 0)
        // 2001:2::/48, benchmarking (like 198.18.0.0/15).
        || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0)
        // 2001:db8::/32 and 3fff::/20 (RFC 9637), documentation.
        || (s[0] == 0x2001 && s[1] == 0xdb8)
        || (s[0] == 0x3fff && (s[1] & 0xf000) == 0)
        // 100::/64, discard-only.
        || s[..4] == [0x100, 0, 0, 0]
        // fec0::/10, deprecated site-local, still routed internally by some networks.
        || (s[0] & 0xffc0) == 0xfec0;
    !refused
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

fn check_scheme(url: &Url, allow_private: bool) -> Result<(), UrlRefusal> {
    match url.scheme() {
        "https" => Ok(()),
        // Plain http is only for development setups, which are also the ones allowed to target
        // private addresses.
        "http" if allow_private => Ok(()),
        _ => Err(UrlRefusal::NotHttps),
    }
}

/// The IP address a URL's host is written as, if it is an IP literal.
fn literal_ip(host: &Host<&str>) -> Option<IpAddr> {
    match *host {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

/// Checks a webhook URL at registration time and returns it parsed.
///
/// Requires https (http too when `allow_private`) and a host. Unless `allow_private`, the host
/// must resolve, and every address it resolves to must be [public](is_public): one private
/// address among public ones is enough to refuse, since the connector may pick any of them.
pub async fn check_url(url: &str, allow_private: bool) -> Result<Url, UrlRefusal> {
    let parsed = Url::parse(url).map_err(|e| UrlRefusal::Malformed(e.to_string()))?;
    check_target(&parsed, allow_private)?;
    if allow_private {
        return Ok(parsed);
    }
    let Some(Host::Domain(domain)) = parsed.host() else {
        // IP literals were judged by `check_target`.
        return Ok(parsed);
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let unresolvable = || UrlRefusal::Unresolvable { host: domain.to_owned() };
    let addrs: Vec<SocketAddr> = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((domain, port)))
        .await
        .map_err(|_| unresolvable())?
        .map_err(|_| unresolvable())?
        .collect();
    refuse_private(domain, &addrs)?;
    Ok(parsed)
}

fn refuse_private(host: &str, addrs: &[SocketAddr]) -> Result<(), UrlRefusal> {
    if addrs.is_empty() {
        return Err(UrlRefusal::Unresolvable { host: host.to_owned() });
    }
    match addrs.iter().map(SocketAddr::ip).find(|ip| !is_public(*ip)) {
        Some(addr) => Err(UrlRefusal::PrivateAddress { host: host.to_owned(), addr }),
        None => Ok(()),
    }
}

/// The synchronous part of [`check_url`], repeated right before each delivery.
///
/// Checks the scheme and, when the host is an IP literal, that it is public. IP literals are
/// connected to directly without going through a resolver, so the resolver installed by
/// [`client`] never sees them; this is their only check at delivery time.
pub fn check_target(url: &Url, allow_private: bool) -> Result<(), UrlRefusal> {
    check_scheme(url, allow_private)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let host = url.host().ok_or(UrlRefusal::NoHost)?;
    if allow_private {
        return Ok(());
    }
    match literal_ip(&host) {
        Some(addr) if !is_public(addr) => {
            Err(UrlRefusal::PrivateAddress { host: url.host_str().unwrap_or_default().to_owned(), addr })
        }
        _ => Ok(()),
    }
}

/// Resolves with the system resolver and fails when any answer is not public, so that a name
/// that was public at registration but now points inside (DNS rebinding) is caught at delivery.
#[derive(Debug, Clone, Copy)]
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0 is replaced by reqwest with the URL's port.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            refuse_private(&host, &addrs)?;
            tracing::trace!(%host, ?addrs, "webhook host resolved to public addresses");
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client for webhook deliveries.
///
/// Redirects are not followed (a redirect to an internal address would bypass every check) and
/// environment proxies are ignored (the proxy, not us, would resolve the host). Unless
/// `allow_private`, host names are resolved by a resolver that fails the request when the name
/// resolves to a non-public address; the refusal is a [`UrlRefusal`] in the error's source chain.
/// Callers must still run [`check_target`] before each request, for IP-literal hosts.
///
/// `timeout` bounds the whole request; connecting is bounded by the smaller of it and 5 s.
pub fn client(timeout: Duration, allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .user_agent(USER_AGENT);
    let builder = if allow_private { builder } else { builder.dns_resolver(PublicOnlyResolver) };
    builder.build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn is_public_table() {
        let cases: &[(&str, bool)] = &[
            // Public.
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("2606:4700:4700::1111", true),
            ("::ffff:8.8.8.8", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("198.17.255.255", true),
            ("198.20.0.0", true),
            ("223.255.255.255", true),
            ("64:ff9b::808:808", true),
            ("2002:808:808::1", true),
            ("2a00:1450:4001::1", true),
            ("2001:4860:4860::8888", true),
            // IPv4.
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("169.254.169.254", false),
            ("169.254.0.1", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("192.88.99.1", false),
            ("192.168.1.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            // IPv6.
            ("::", false),
            ("::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:0:7f00:1", false),
            ("::ffff:0:808:808", true),
            ("::127.0.0.1", false),
            ("::8.8.8.8", false),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b:1::808:808", false),
            ("64:ff9b:1:7f00:0:100::", false),
            ("2002:7f00:1::1", false),
            ("2002:a00:1::", false),
            ("2001::1", false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("2001:2::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("3fff:fff::1", false),
            ("100::1", false),
            ("fc00::1", false),
            ("fd00:ec2::254", false),
            ("fe80::1", false),
            ("febf::1", false),
            ("fec0::1", false),
            ("feff::1", false),
            ("ff02::1", false),
            ("ff0e::1", false),
        ];
        for &(addr, expected) in cases {
            let ip: IpAddr = addr.parse().unwrap();
            assert_eq!(is_public(ip), expected, "{addr}");
        }
    }

    #[tokio::test]
    async fn check_url_refuses_plain_http() {
        assert_eq!(check_url("http://example.com/", false).await, Err(UrlRefusal::NotHttps));
        assert_eq!(check_url("ftp://example.com/", true).await, Err(UrlRefusal::NotHttps));
    }

    #[tokio::test]
    async fn check_url_refuses_private_literals() {
        let cases = [
            ("https://127.0.0.1/x", "127.0.0.1"),
            ("https://[::1]/", "::1"),
            ("https://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
            ("https://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
            ("https://2130706433/", "127.0.0.1"),
            ("https://0x7f.1/", "127.0.0.1"),
            ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("https://[fd00:ec2::254]/", "fd00:ec2::254"),
            ("https://[fe80::1]/", "fe80::1"),
        ];
        for (url, addr) in cases {
            let addr: IpAddr = addr.parse().unwrap();
            match check_url(url, false).await {
                Err(UrlRefusal::PrivateAddress { addr: got, .. }) => assert_eq!(got, addr, "{url}"),
                other => panic!("{url}: expected PrivateAddress, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn check_url_refuses_names_resolving_to_private() {
        let refusal = check_url("https://localhost/", false).await.unwrap_err();
        let UrlRefusal::PrivateAddress { host, addr } = &refusal else {
            panic!("expected PrivateAddress, got {refusal:?}");
        };
        assert_eq!(host, "localhost");
        assert!(addr.is_loopback());
        let message = refusal.to_string();
        assert!(message.contains("`localhost` resolves to"), "{message}");
        assert!(message.contains("private, loopback or link-local address"), "{message}");
        assert!(!message.contains("127.0.0.1") && !message.contains("::1"), "the address is not revealed: {message}");
    }

    #[tokio::test]
    async fn check_url_refuses_malformed_and_hostless() {
        assert!(matches!(check_url("not a url at all", false).await, Err(UrlRefusal::Malformed(_))));
        assert!(matches!(check_url("https://", false).await, Err(UrlRefusal::Malformed(_))));
        assert!(matches!(check_url("https://:443/x", false).await, Err(UrlRefusal::Malformed(_))));
    }

    #[tokio::test]
    async fn check_url_allow_private_accepts_local_http() {
        let url = check_url("http://127.0.0.1:9/x", true).await.unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/x");
    }

    #[test]
    fn check_target_judges_scheme_and_literals_only() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(check_target(&url("http://example.com/"), false), Err(UrlRefusal::NotHttps));
        assert_eq!(check_target(&url("http://example.com/"), true), Ok(()));
        assert_eq!(check_target(&url("https://example.com/"), false), Ok(()));
        assert_eq!(check_target(&url("https://8.8.8.8/"), false), Ok(()));
        assert_eq!(check_target(&url("https://[::1]/"), true), Ok(()));
        assert_eq!(check_target(&url("https://user:pw@example.com/"), false), Err(UrlRefusal::Credentials));
        assert_eq!(
            check_target(&url("https://[::1]/"), false),
            Err(UrlRefusal::PrivateAddress { host: "[::1]".to_owned(), addr: IpAddr::V6(Ipv6Addr::LOCALHOST) })
        );
    }

    #[test]
    fn refusal_messages_explain_the_fix() {
        let private = UrlRefusal::PrivateAddress { host: "example.internal".to_owned(), addr: [10, 0, 0, 1].into() };
        assert_eq!(
            private.to_string(),
            "`example.internal` resolves to a private, loopback or link-local address; webhooks must reach a public address"
        );
        assert!(UrlRefusal::Credentials.to_string().contains("user:password@"));
        let literal = UrlRefusal::PrivateAddress { host: "[::1]".to_owned(), addr: Ipv6Addr::LOCALHOST.into() };
        assert_eq!(literal.to_string(), "`[::1]` is a private address; webhooks must reach a public address");
        assert!(UrlRefusal::NotHttps.to_string().contains("must use https"));
    }

    /// Serves every connection on 127.0.0.1 with `response`, whatever the request.
    async fn serve(response: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0_u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        port
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
    const FOUND: &str = "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    fn error_chain(error: &(dyn std::error::Error + 'static)) -> (String, Option<UrlRefusal>) {
        let mut text = String::new();
        let mut refusal = None;
        let mut current = Some(error);
        while let Some(e) = current {
            text.push_str(&format!("{e}: "));
            if let Some(r) = e.downcast_ref::<UrlRefusal>() {
                refusal = Some(r.clone());
            }
            current = e.source();
        }
        (text, refusal)
    }

    #[tokio::test]
    async fn client_refuses_names_resolving_to_private_addresses() {
        let port = serve(OK).await;
        let url = format!("http://localhost:{port}/");

        let guarded = client(Duration::from_secs(5), false).unwrap();
        let error = guarded.get(&url).send().await.unwrap_err();
        let (text, refusal) = error_chain(&error);
        // Whether localhost is 127.0.0.1 or ::1 depends on the machine's /etc/hosts.
        assert!(text.contains("`localhost` resolves to"), "{text}");
        assert!(text.contains("a private, loopback or link-local address"), "{text}");
        assert!(matches!(refusal, Some(UrlRefusal::PrivateAddress { .. })), "{text}");

        let open = client(Duration::from_secs(5), true).unwrap();
        let response = open.get(&url).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn client_does_not_follow_redirects() {
        let port = serve(FOUND).await;
        let response = client(Duration::from_secs(5), true)
            .unwrap()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        assert_eq!(response.headers()[reqwest::header::LOCATION], "http://127.0.0.1:9/elsewhere");
    }

    #[tokio::test]
    async fn client_sends_user_agent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0_u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert_ne!(n, 0);
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(OK.as_bytes()).await.unwrap();
            String::from_utf8(request).unwrap()
        });
        let url = format!("http://127.0.0.1:{port}/");
        client(Duration::from_secs(5), true).unwrap().get(url).send().await.unwrap();
        let request = server.await.unwrap().to_ascii_lowercase();
        assert!(request.contains(&format!("user-agent: kairos-webhooks/{}", env!("CARGO_PKG_VERSION"))), "{request}");
    }
}
