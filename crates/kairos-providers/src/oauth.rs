//! OAuth 2.0 authorization code with PKCE (RFC 6749, RFC 7636) for Google and Microsoft, over
//! the `oauth2` crate with our own reqwest client (the caller passes the SSRF-guarded one; it
//! follows no redirects).
//!
//! Provider quirks live here: Google returns a refresh token only for `access_type=offline`
//! with `prompt=consent`; Microsoft needs the `offline_access` scope and ROTATES refresh tokens
//! (the caller must store the new one every time — `Tokens::refresh_token`).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use url::Url;

/// An OAuth application registered with a provider.
#[derive(Clone)]
pub struct OAuthApp {
    pub provider: &'static str,
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: Url,
    pub token_url: Url,
    /// RFC 7009 revocation endpoint (Google has one; Microsoft does not revoke single grants).
    pub revoke_url: Option<Url>,
    pub scopes: Vec<String>,
    /// Extra authorization parameters (Google's `access_type=offline&prompt=consent`).
    pub extra: Vec<(String, String)>,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("auth_url", &self.auth_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Tokens from a code exchange or a refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    /// Present on the first exchange, and on every Microsoft refresh (rotation).
    pub refresh_token: Option<String>,
    pub expires_at: Timestamp,
    pub scope: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The grant was refused (`invalid_grant`: expired or revoked): the user must reconnect.
    #[error("the provider refused the grant: {0}")]
    Refused(String),
    /// The provider could not be reached, or answered a server error: try again later.
    #[error("the provider's token endpoint could not be used: {0}")]
    Unavailable(String),
    /// Our configuration is wrong (`invalid_client`, bad URLs).
    #[error("the OAuth client is misconfigured: {0}")]
    Misconfigured(String),
}

/// A PKCE pair: the verifier stays with us, the challenge goes in the authorization URL.
pub struct Pkce {
    pub verifier: String,
    challenge: PkceCodeChallenge,
}

impl Pkce {
    pub fn new() -> Self {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        Self { verifier: verifier.secret().clone(), challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// The oauth2 client with its authorization and token endpoints set.
type Client = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

impl OAuthApp {
    /// Google: `accounts` is `https://accounts.google.com`'s authorization URL, `token` and
    /// `revoke` those of `https://oauth2.googleapis.com`.
    pub fn google(client_id: String, client_secret: String, auth_url: Url, token_url: Url, revoke_url: Url) -> Self {
        Self {
            provider: "google",
            client_id,
            client_secret,
            auth_url,
            token_url,
            revoke_url: Some(revoke_url),
            scopes: vec!["https://www.googleapis.com/auth/calendar".into(), "openid".into(), "email".into()],
            extra: vec![
                ("access_type".into(), "offline".into()),
                ("prompt".into(), "consent".into()),
                ("include_granted_scopes".into(), "true".into()),
            ],
        }
    }

    /// Microsoft identity platform v2.0: `login` is `https://login.microsoftonline.com`.
    pub fn microsoft(
        client_id: String,
        client_secret: String,
        login: &Url,
        tenant: &str,
    ) -> Result<Self, url::ParseError> {
        let base = format!("{}/{tenant}/oauth2/v2.0/", login.as_str().trim_end_matches('/'));
        Ok(Self {
            provider: "microsoft",
            client_id,
            client_secret,
            auth_url: Url::parse(&format!("{base}authorize"))?,
            token_url: Url::parse(&format!("{base}token"))?,
            revoke_url: None,
            scopes: vec![
                "offline_access".into(),
                "openid".into(),
                "email".into(),
                "https://graph.microsoft.com/Calendars.ReadWrite".into(),
                "https://graph.microsoft.com/User.Read".into(),
            ],
            extra: vec![("prompt".into(), "select_account".into())],
        })
    }

    fn client(&self, redirect_uri: Option<&str>) -> Result<Client, OAuthError> {
        let mut client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
            .set_auth_uri(AuthUrl::from_url(self.auth_url.clone()))
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()))
            // Both providers take the client credentials in the form body.
            .set_auth_type(oauth2::AuthType::RequestBody);
        if let Some(uri) = redirect_uri {
            let uri = RedirectUrl::new(uri.to_string())
                .map_err(|e| OAuthError::Misconfigured(format!("redirect URI: {e}")))?;
            client = client.set_redirect_uri(uri);
        }
        Ok(client)
    }

    /// The provider's consent URL.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str, pkce: &Pkce) -> Result<Url, OAuthError> {
        let client = self.client(Some(redirect_uri))?;
        let state = state.to_string();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(pkce.challenge.clone());
        for (k, v) in &self.extra {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        Ok(request.url().0)
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        http: &reqwest::Client,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        now: Timestamp,
    ) -> Result<Tokens, OAuthError> {
        let client = self.client(Some(redirect_uri))?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&sender(http))
            .await
            .map_err(classify)?;
        Ok(tokens(&response, now))
    }

    /// Refreshes an access token.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        refresh_token: &str,
        now: Timestamp,
    ) -> Result<Tokens, OAuthError> {
        let client = self.client(None)?;
        let response = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .request_async(&sender(http))
            .await
            .map_err(classify)?;
        Ok(tokens(&response, now))
    }

    /// Revokes a token where the provider can (RFC 7009); `Ok(false)` where it cannot.
    pub async fn revoke(&self, http: &reqwest::Client, token: &str) -> Result<bool, OAuthError> {
        let Some(url) = &self.revoke_url else { return Ok(false) };
        let response = http
            .post(url.clone())
            .form(&[("token", token)])
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(e.to_string()))?;
        // 400 means the token is already invalid: revoked is what we wanted.
        if response.status().is_success() || response.status() == reqwest::StatusCode::BAD_REQUEST {
            Ok(true)
        } else {
            Err(OAuthError::Unavailable(format!("revocation answered {}", response.status())))
        }
    }
}

fn tokens(response: &oauth2::basic::BasicTokenResponse, now: Timestamp) -> Tokens {
    // Providers always send expires_in; an hour is the documented default otherwise.
    let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3600));
    let lifetime = SignedDuration::try_from(lifetime).unwrap_or(SignedDuration::from_hours(1));
    Tokens {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        expires_at: now.saturating_add(lifetime).unwrap_or(now),
        scope: response.scopes().map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
    }
}

fn classify(e: RequestTokenError<HttpError, oauth2::StandardErrorResponse<BasicErrorResponseType>>) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let detail = r.error_description().cloned().unwrap_or_else(|| r.error().to_string());
            match r.error() {
                BasicErrorResponseType::InvalidGrant => OAuthError::Refused(detail),
                BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
                    OAuthError::Misconfigured(detail)
                }
                _ => OAuthError::Unavailable(detail),
            }
        }
        RequestTokenError::Request(e) => OAuthError::Unavailable(e.to_string()),
        RequestTokenError::Parse(e, _) => OAuthError::Unavailable(format!("unreadable token response: {e}")),
        RequestTokenError::Other(e) => OAuthError::Unavailable(e),
    }
}

/// The oauth2 crate's HTTP seam, over our reqwest client.
fn sender(
    http: &reqwest::Client,
) -> impl Fn(oauth2::HttpRequest) -> std::pin::Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send>>
+ '_ {
    move |request: oauth2::HttpRequest| {
        let http = http.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let mut builder = http.request(parts.method, url).body(body);
            for (name, value) in &parts.headers {
                builder = builder.header(name, value);
            }
            let response = builder.send().await.map_err(|e| HttpError(e.to_string()))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| HttpError(e.to_string()))?;
            let mut out = http::Response::builder().status(status);
            for (name, value) in &headers {
                out = out.header(name, value);
            }
            out.body(body.to_vec()).map_err(|e| HttpError(e.to_string()))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn google_consent_url_asks_for_offline_access_with_pkce() {
        let app = OAuthApp::google(
            "cid".into(),
            "secret".into(),
            Url::parse("https://accounts.google.com/o/oauth2/v2/auth").unwrap(),
            Url::parse("https://oauth2.googleapis.com/token").unwrap(),
            Url::parse("https://oauth2.googleapis.com/revoke").unwrap(),
        );
        let pkce = Pkce::new();
        let url = app.authorize_url("https://kairos.example/v1/calendars/google/callback", "st.sig", &pkce).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["state"], "st.sig");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["access_type"], "offline");
        assert_eq!(q["prompt"], "consent");
        assert!(q["scope"].contains("https://www.googleapis.com/auth/calendar"));
        assert!(pkce.verifier.len() >= 43);
        assert!(!url.as_str().contains(&pkce.verifier));
    }

    #[test]
    fn microsoft_urls_carry_the_tenant() {
        let app = OAuthApp::microsoft(
            "cid".into(),
            "s".into(),
            &Url::parse("https://login.microsoftonline.com").unwrap(),
            "common",
        )
        .unwrap();
        assert_eq!(app.token_url.as_str(), "https://login.microsoftonline.com/common/oauth2/v2.0/token");
        let url = app.authorize_url("https://k/cb", "s", &Pkce::new()).unwrap();
        assert!(url.as_str().starts_with("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?"));
        assert!(url.query_pairs().any(|(k, v)| k == "scope" && v.contains("offline_access")));
    }
}
