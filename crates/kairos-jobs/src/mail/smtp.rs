//! The SMTP connection: what an `smtp://` or `smtps://` URL means, and sending over it.
//!
//! The URL decides the security, never a separate switch, so a configuration cannot send a
//! password in the clear: with credentials, `smtp://` requires STARTTLS (no fallback, so a
//! man in the middle cannot strip it) and `smtps://` is TLS from the first byte; only a URL
//! without credentials (a relay on the same host or network, or a test server) talks plain
//! SMTP. The password never appears in an error, a log line or `Debug` output.
//!
//! The server's certificate is checked against the system's roots plus, for a server whose
//! certificate an internal CA issued, that CA's certificates ([`Mailer::with_ca`],
//! `KAIROS_SMTP_CA_FILE`): trust can be added, never switched off.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use percent_encoding::percent_decode_str;

use super::message::OutgoingEmail;

/// How long one step of a conversation (connecting, each command) may take before the
/// attempt counts as failed and is retried later. Servers answer in milliseconds; 15 s
/// leaves room for a slow TLS handshake without holding a worker for minutes.
const TIMEOUT: Duration = Duration::from_secs(15);

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP, upgraded with STARTTLS before anything else is said; refused if the
    /// server does not offer it.
    StartTls,
    /// TLS from the first byte (SMTPS, RFC 8314).
    Tls,
    /// Plain SMTP: only without credentials.
    None,
}

/// A parsed SMTP URL: `smtp://user:pass@host:587`, `smtps://user:pass@host:465`, or
/// `smtp://host:port` (no credentials: plain).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User and password, percent-decoded. Private so that nothing prints the password.
    credentials: Option<(String, String)>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user())
            .finish_non_exhaustive()
    }
}

/// Why the mailer cannot be set up. Never carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailerError {
    #[error(
        "the SMTP URL is not a URL ({0}); expected smtp://user:password@host:587 or smtps://user:password@host:465"
    )]
    NotUrl(String),
    #[error("the SMTP URL's scheme is `{0}`; expected smtp:// (STARTTLS with credentials) or smtps:// (TLS)")]
    Scheme(String),
    #[error("the SMTP URL names no host")]
    NoHost,
    #[error("the SMTP URL has a user name but no password")]
    NoPassword,
    #[error("the SMTP URL has a password but no user name")]
    NoUser,
    #[error("the SMTP URL's {0} is not UTF-8 once percent-decoded")]
    NotUtf8(&'static str),
    #[error("the SMTP URL has a {0}, which means nothing to SMTP; remove it")]
    Extra(&'static str),
    #[error(
        "the sender address `{from}` is not an email address ({reason}); expected bookings@example.com or Name <bookings@example.com>"
    )]
    From { from: String, reason: String },
    #[error("TLS cannot be set up for {host}: {reason}")]
    Tls { host: String, reason: String },
    #[error("the SMTP CA file is not usable: {0}; expected PEM certificates (-----BEGIN CERTIFICATE-----)")]
    CaFile(String),
    #[error(
        "an SMTP CA file is set, but the SMTP URL talks plain SMTP without TLS (smtp:// without credentials); use smtps://, or smtp:// with credentials (STARTTLS)"
    )]
    CaWithoutTls,
}

/// Certificate authorities to trust for the SMTP server's certificate besides the system's
/// (`KAIROS_SMTP_CA_FILE`): PEM text holding at least one certificate, such as an internal
/// CA's (other PEM sections are ignored).
fn ca_certificates(pem: &[u8]) -> Result<Certificate, MailerError> {
    if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(MailerError::CaFile("it holds no certificate".into()));
    }
    Certificate::from_pem(pem).map_err(|e| MailerError::CaFile(e.to_string()))
}

impl SmtpUrl {
    /// The user name, if any.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(user, _)| user.as_str())
    }
}

impl FromStr for SmtpUrl {
    type Err = MailerError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // url's errors describe the problem, never echo the input (which holds the password).
        let url = url::Url::parse(text.trim()).map_err(|e| MailerError::NotUrl(e.to_string()))?;
        let tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(MailerError::Scheme(other.to_string())),
        };
        let host = match url.host() {
            Some(url::Host::Domain("")) | None => return Err(MailerError::NoHost),
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
        };
        if !matches!(url.path(), "" | "/") {
            return Err(MailerError::Extra("path"));
        }
        if url.query().is_some() {
            return Err(MailerError::Extra("query"));
        }
        if url.fragment().is_some() {
            return Err(MailerError::Extra("fragment"));
        }
        let decode = |raw: &str, what: &'static str| {
            percent_decode_str(raw).decode_utf8().map(|s| s.into_owned()).map_err(|_| MailerError::NotUtf8(what))
        };
        let user = decode(url.username(), "user name")?;
        let password = url.password().map(|p| decode(p, "password")).transpose()?.unwrap_or_default();
        let credentials = match (user.is_empty(), password.is_empty()) {
            (true, true) => None,
            (false, false) => Some((user, password)),
            (false, true) => return Err(MailerError::NoPassword),
            (true, false) => return Err(MailerError::NoUser),
        };
        let security = match (tls, &credentials) {
            (true, _) => Security::Tls,
            (false, Some(_)) => Security::StartTls,
            (false, None) => Security::None,
        };
        // Default ports: submission (587) for STARTTLS, submissions (465) for TLS, 25 for a
        // plain relay.
        let port = url.port().unwrap_or(match security {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        });
        Ok(Self { host, port, security, credentials })
    }
}

/// Why one email was not sent, and whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Connection refused or lost, a timeout, TLS trouble, a 4xx reply, a refused login:
    /// the same email may well go through later (or once the operator fixes the settings).
    #[error("sending failed, will retry: {0}")]
    Transient(String),
    /// A 5xx reply to this message (an unknown mailbox, a message refused as it is), or an
    /// email that cannot be written: sending it again would fail the same way.
    #[error("sending failed for good: {0}")]
    Permanent(String),
}

/// Sends booking emails through one SMTP server, one connection per email: booking emails
/// are few, and nothing stays open for a server to time out.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    url: SmtpUrl,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").field("url", &self.url).field("from", &self.from.to_string()).finish()
    }
}

impl Mailer {
    /// A mailer for `url` (see [`SmtpUrl`]) sending as `from` (`bookings@example.com` or
    /// `Example Bookings <bookings@example.com>`). Nothing is connected until the first send.
    pub fn from_url(url: &str, from: &str) -> Result<Self, MailerError> {
        Self::new(url.parse()?, from)
    }

    /// A mailer for a parsed URL.
    pub fn new(url: SmtpUrl, from: &str) -> Result<Self, MailerError> {
        Self::with_ca(url, from, None)
    }

    /// A mailer for a parsed URL that also trusts the certificate authorities in `ca_pem`
    /// (PEM, e.g. `KAIROS_SMTP_CA_FILE`'s content) for the server's certificate. A CA with a
    /// URL that uses no TLS is refused: whoever set it expects TLS.
    pub fn with_ca(url: SmtpUrl, from: &str, ca_pem: Option<&[u8]>) -> Result<Self, MailerError> {
        let from: Mailbox = from.trim().parse().map_err(|e: lettre::address::AddressError| MailerError::From {
            from: from.to_string(),
            reason: e.to_string(),
        })?;
        let ca = ca_pem.map(ca_certificates).transpose()?;
        if ca.is_some() && url.security == Security::None {
            return Err(MailerError::CaWithoutTls);
        }
        let tls = |host: &str| {
            let mut params = TlsParameters::builder(host.to_string());
            if let Some(ca) = &ca {
                params = params.add_root_certificate(ca.clone());
            }
            params.build().map_err(|e| MailerError::Tls { host: host.to_string(), reason: e.to_string() })
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
            .port(url.port)
            .timeout(Some(TIMEOUT))
            .tls(match url.security {
                Security::StartTls => Tls::Required(tls(&url.host)?),
                Security::Tls => Tls::Wrapper(tls(&url.host)?),
                Security::None => Tls::None,
            });
        if let Some((user, password)) = &url.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self { transport: builder.build(), from, url })
    }

    /// The sender every email carries.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Sends one email.
    #[tracing::instrument(skip_all, fields(host = %self.url.host, port = self.url.port))]
    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let message = email.to_message(self.from.clone())?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let error = classify(&e);
                tracing::warn!(%error, "email not sent");
                Err(error)
            }
        }
    }
}

/// Sorts a failure by what RFC 5321 §4.2.1 says of its reply: 5xx is permanent, everything
/// else (4xx, no reply at all) transient. The exception is a refused login (RFC 4954's 530,
/// 534, 535, 538): it says nothing about this email, every email fails the same way until the
/// settings are fixed, and then they should all go.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    let code = e.status().map(|c| c.to_string());
    if matches!(code.as_deref(), Some("530" | "534" | "535" | "538")) {
        SendError::Transient(format!(
            "the SMTP server refused the login (check the SMTP URL's user and password): {text}"
        ))
    } else if e.is_permanent() {
        SendError::Permanent(text)
    } else if e.is_timeout() {
        SendError::Transient(format!("no answer within {}s: {text}", TIMEOUT.as_secs()))
    } else {
        SendError::Transient(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<SmtpUrl, MailerError> {
        url.parse()
    }

    #[test]
    fn credentials_over_smtp_require_starttls() {
        let url = parse("smtp://mailer:s3cret@smtp.example.com:587").unwrap();
        assert_eq!(url.host, "smtp.example.com");
        assert_eq!(url.port, 587);
        assert_eq!(url.security, Security::StartTls);
        assert_eq!(url.user(), Some("mailer"));
        assert_eq!(parse("smtp://mailer:s3cret@smtp.example.com").unwrap().port, 587);
    }

    #[test]
    fn smtps_is_tls_from_the_first_byte() {
        let url = parse("smtps://mailer:s3cret@smtp.example.com:465").unwrap();
        assert_eq!((url.port, url.security), (465, Security::Tls));
        assert_eq!(parse("smtps://mailer:s3cret@smtp.example.com").unwrap().port, 465);
        // Without credentials too: TLS is what the scheme asks for.
        assert_eq!(parse("smtps://smtp.example.com").unwrap().security, Security::Tls);
    }

    #[test]
    fn no_credentials_means_a_plain_local_server() {
        let url = parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.security), ("127.0.0.1", 2525, Security::None));
        assert_eq!(url.user(), None);
        assert_eq!(parse("smtp://relay.internal").unwrap().port, 25);
        assert_eq!(parse("smtp://[::1]:2525/").unwrap().host, "::1");
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let url = parse("smtp://bookings%40example.com:p%40ss%3Aw%2Frd%20x@smtp.example.com:587").unwrap();
        assert_eq!(url.user(), Some("bookings@example.com"));
        assert_eq!(url.credentials.as_ref().map(|(_, p)| p.as_str()), Some("p@ss:w/rd x"));
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        let cases = [
            ("not a url", "is not a URL"),
            ("http://user:hunter2@smtp.example.com", "scheme is `http`"),
            ("smtp://user@smtp.example.com", "no password"),
            ("smtp://:hunter2@smtp.example.com", "no user name"),
            ("smtp://user:hunter2@smtp.example.com/inbox", "has a path"),
            ("smtp://user:hunter2@smtp.example.com?tls=none", "has a query"),
            ("smtp://user:hunter2@smtp.example.com:99999", "is not a URL"),
            ("smtp://user:%FF%FE@smtp.example.com", "password is not UTF-8"),
            ("smtp://", "no host"),
        ];
        for (url, expected) in cases {
            let error = parse(url).expect_err(url).to_string();
            assert!(error.contains(expected), "{url}: {error}");
            assert!(!error.contains("hunter2"), "{url}: {error}");
        }
    }

    #[test]
    fn debug_output_hides_the_password() {
        let mailer =
            Mailer::from_url("smtp://mailer:hunter2@smtp.example.com:587", "Bookings <b@example.com>").unwrap();
        let shown = format!("{mailer:?} {:?}", parse("smtps://mailer:hunter2@smtp.example.com").unwrap());
        assert!(shown.contains("mailer") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_ca_file_must_hold_certificates_and_goes_with_tls() {
        let tls = || parse("smtps://mailer:s3cret@smtp.example.com").unwrap();
        let with_ca = |url: SmtpUrl, pem: &[u8]| Mailer::with_ca(url, "b@example.com", Some(pem)).map(|_| ());
        let error = with_ca(tls(), b"not a certificate").unwrap_err();
        assert!(matches!(error, MailerError::CaFile(_)), "{error}");
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(with_ca(tls(), key_only), Err(MailerError::CaFile(_))));
        // Well-formed PEM whose content is not a certificate: refused when TLS is set up, at
        // start, not at the first email.
        let junk = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(with_ca(tls(), junk), Err(MailerError::Tls { .. })));
        let plain = parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(with_ca(plain, junk), Err(MailerError::CaWithoutTls));
    }

    #[test]
    fn the_sender_must_be_an_address() {
        assert!(Mailer::from_url("smtp://127.0.0.1:2525", "Example Bookings <bookings@example.com>").is_ok());
        let error = Mailer::from_url("smtp://127.0.0.1:2525", "bookings at example").unwrap_err();
        assert!(matches!(error, MailerError::From { .. }), "{error}");
    }
}
