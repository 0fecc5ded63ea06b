//! The Microsoft identity platform's v2.0 endpoints (`/{tenant}/oauth2/v2.0/authorize` and
//! `/token`), per learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow:
//! the authorization code grant with PKCE (S256 or plain) and a client secret, and the refresh
//! grant, which rotates the refresh token ("replace the old refresh token with this newly
//! acquired refresh token"). The real service tolerates an old refresh token for a while; the
//! emulator refuses it by default so tests catch clients that keep the old one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::errors::{AadError, GraphError, guid};
use crate::microsoft::{MicrosoftEmulator, Shared};

/// What an authorization code was issued for.
#[derive(Debug, Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    scope: String,
    challenge: Option<(String, String)>,
    redeemed: bool,
}

#[derive(Debug, Clone)]
struct AccessToken {
    expires: Timestamp,
    revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RefreshState {
    Active,
    Rotated,
    Revoked,
}

#[derive(Debug, Clone)]
struct RefreshToken {
    scope: String,
    state: RefreshState,
}

/// Grants and tokens.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    pub access_lifetime: u64,
    pub refresh_grants: usize,
    pub allow_refresh_reuse: bool,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            // What the identity platform answers: `expires_in: 3599`.
            access_lifetime: 3599,
            refresh_grants: 0,
            allow_refresh_reuse: false,
        }
    }
}

fn random_token(prefix: &str, bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(raw))
}

impl Identity {
    pub fn expire_access_tokens(&mut self) {
        let past = Timestamp::now().checked_sub(SignedDuration::from_secs(1)).unwrap_or(Timestamp::MIN);
        for t in self.access.values_mut() {
            t.expires = past;
        }
    }

    pub fn revoke_all(&mut self) {
        for t in self.access.values_mut() {
            t.revoked = true;
        }
        for t in self.refresh.values_mut() {
            t.state = RefreshState::Revoked;
        }
    }

    /// Whether a request's `Authorization` header holds a live access token; the 401 if not.
    pub fn check_bearer(&self, headers: &HeaderMap) -> Result<(), GraphError> {
        let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or("").trim();
        if token.is_empty() {
            return Err(GraphError::unauthenticated("Access token is empty."));
        }
        match self.access.get(token) {
            None => Err(GraphError::unauthenticated("IDX14100: JWT is not well formed, there are no dots (.).")),
            Some(t) if t.revoked => Err(GraphError::unauthenticated(
                "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: \
                 TokenIssuedBeforeRevocationTimestamp",
            )),
            Some(t) if t.expires <= Timestamp::now() => {
                Err(GraphError::unauthenticated("Lifetime validation failed, the token is expired."))
            }
            Some(_) => Ok(()),
        }
    }

    /// Issues an access token (and a refresh token when `offline_access` was granted).
    fn issue(&mut self, scope: &str, email: &str, tenant: &str, user: &str) -> serde_json::Value {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256","kid":"kairos-emulator"}"#);
        let access = random_token(&format!("{header}."), 48) + "." + &random_token("", 32);
        let lifetime = self.access_lifetime;
        let expires =
            Timestamp::now().checked_add(SignedDuration::from_secs(lifetime as i64)).unwrap_or(Timestamp::MAX);
        self.access.insert(access.clone(), AccessToken { expires, revoked: false });
        let granted: Vec<&str> = scope
            .split_whitespace()
            .filter(|s| !matches!(*s, "offline_access" | "openid" | "profile" | "email"))
            .collect();
        let mut body = json!({
            "token_type": "Bearer",
            "scope": granted.join(" "),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access,
        });
        if scope.split_whitespace().any(|s| s == "offline_access") {
            let refresh = random_token("1.AQcA", 96);
            self.refresh
                .insert(refresh.clone(), RefreshToken { scope: scope.to_string(), state: RefreshState::Active });
            body["refresh_token"] = json!(refresh);
        }
        if scope.split_whitespace().any(|s| s == "openid") {
            // Unsigned (the emulator has no keys): enough for a client reading the claims.
            let claims = json!({"aud": MicrosoftEmulator::CLIENT_ID, "iss": format!("https://login.microsoftonline.com/{tenant}/v2.0"),
                                "tid": tenant, "oid": user, "sub": user, "preferred_username": email,
                                "email": email, "name": "Alice Contoso", "ver": "2.0"});
            body["id_token"] = json!(format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            ));
        }
        body
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct AuthorizeParams {
    client_id: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `302 Found`, as the identity platform redirects (axum's `Redirect::to` is a 303).
fn found(to: &url::Url) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.as_str().to_string())]).into_response()
}

fn error_page(code: u32, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Html(format!("<html><body><h1>Sign in</h1><p>AADSTS{code}: {message}</p></body></html>")))
        .into_response()
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the user signs in and consents at once; the browser
/// goes back to `redirect_uri` with `code` and `state`.
pub(crate) async fn authorize(AxState(shared): AxState<Arc<Shared>>, Query(p): Query<AuthorizeParams>) -> Response {
    let client_id = p.client_id.unwrap_or_default();
    if client_id != MicrosoftEmulator::CLIENT_ID {
        return error_page(
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory 'Contoso'."),
        );
    }
    let Some(redirect_uri) = p.redirect_uri.filter(|r| url::Url::parse(r).is_ok()) else {
        return error_page(900144, "The request body must contain the following parameter: 'redirect_uri'.");
    };
    let Ok(mut back) = url::Url::parse(&redirect_uri) else {
        return error_page(900144, "The redirect_uri is not a valid URL.");
    };
    if p.response_type.as_deref() != Some("code") {
        back.query_pairs_mut().append_pair("error", "unsupported_response_type").append_pair(
            "error_description",
            "AADSTS700054: response_type 'id_token' is not enabled for the application.",
        );
        return found(&back);
    }
    let challenge = match (p.code_challenge, p.code_challenge_method.as_deref()) {
        (Some(c), None | Some("S256")) => Some((c, "S256".to_string())),
        (Some(c), Some("plain")) => Some((c, "plain".to_string())),
        (Some(_), Some(other)) => {
            back.query_pairs_mut().append_pair("error", "invalid_request").append_pair(
                "error_description",
                &format!("AADSTS501491: Invalid code_challenge_method '{other}'; use S256 or plain."),
            );
            return found(&back);
        }
        (None, _) => None,
    };
    let code = random_token("0.AQcA", 64);
    if let Ok(mut st) = shared.state.lock() {
        st.identity.codes.insert(
            code.clone(),
            CodeGrant { client_id, redirect_uri, scope: p.scope.unwrap_or_default(), challenge, redeemed: false },
        );
    }
    {
        let mut q = back.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(state) = p.state {
            q.append_pair("state", &state);
        }
        q.append_pair("session_state", &guid());
    }
    found(&back)
}

/// The client secret from the form or from HTTP Basic.
fn client_credentials(form: &HashMap<String, String>, headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (form.get("client_id").cloned(), form.get("client_secret").cloned()),
    }
}

fn pkce_matches(challenge: &(String, String), verifier: &str) -> bool {
    match challenge.1.as_str() {
        "plain" => challenge.0 == verifier,
        _ => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge.0,
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token(
    AxState(shared): AxState<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match redeem(&shared, &headers, &form) {
        Ok(body) => {
            let mut r = axum::Json(body).into_response();
            r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store, no-cache"));
            r
        }
        Err(e) => e.into_response(),
    }
}

fn redeem(shared: &Shared, headers: &HeaderMap, form: &HashMap<String, String>) -> Result<serde_json::Value, AadError> {
    let mut st = shared.state.lock().map_err(|_| AadError::new(500, "server_error", 90000, "state poisoned"))?;
    let (client_id, secret) = client_credentials(form, headers);
    let client_id = client_id.unwrap_or_default();
    if client_id != MicrosoftEmulator::CLIENT_ID {
        return Err(AadError::new(
            400,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory 'Contoso'."),
        ));
    }
    match secret.as_deref() {
        None => {
            return Err(AadError::new(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
        Some(s) if s != MicrosoftEmulator::CLIENT_SECRET => {
            return Err(AadError::new(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                 value, not the client secret ID.",
            ));
        }
        Some(_) => {}
    }
    let (email, tenant, user) = (st.email.clone(), st.tenant_id.clone(), st.user_id.clone());
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some(grant) = st.identity.codes.get_mut(&code) else {
                return Err(AadError::invalid_grant(
                    70000,
                    "The provided value for the 'code' parameter is not valid.",
                ));
            };
            if grant.redeemed {
                return Err(AadError::invalid_grant(
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an \
                     existing refresh token.",
                ));
            }
            if grant.client_id != client_id {
                return Err(AadError::invalid_grant(70000, "The code was issued to a different client."));
            }
            if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                return Err(AadError::invalid_grant(
                    500112,
                    "The reply address does not match the reply address provided when requesting Authorization code.",
                ));
            }
            if let Some(challenge) = &grant.challenge {
                let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
                if !pkce_matches(challenge, verifier) {
                    return Err(AadError::invalid_grant(
                        501481,
                        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                    ));
                }
            }
            grant.redeemed = true;
            let scope = grant.scope.clone();
            Ok(st.identity.issue(&scope, &email, &tenant, &user))
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let allow_reuse = st.identity.allow_refresh_reuse;
            let Some(grant) = st.identity.refresh.get_mut(&presented) else {
                return Err(AadError::invalid_grant(9002313, "Invalid request. Request is malformed or invalid."));
            };
            match grant.state {
                RefreshState::Revoked => {
                    return Err(AadError::invalid_grant(
                        50173,
                        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The \
                         user might have changed or reset their password.",
                    ));
                }
                RefreshState::Rotated if !allow_reuse => {
                    return Err(AadError::invalid_grant(
                        70008,
                        "The provided authorization code or refresh token has expired due to inactivity. Send a new \
                         interactive authorization request for this user and resource.",
                    ));
                }
                _ => {}
            }
            grant.state = RefreshState::Rotated;
            let mut scope = grant.scope.clone();
            if !scope.split_whitespace().any(|s| s == "offline_access") {
                scope.push_str(" offline_access");
            }
            st.identity.refresh_grants += 1;
            Ok(st.identity.issue(&scope, &email, &tenant, &user))
        }
        Some(other) => Err(AadError::new(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
        None => Err(AadError::invalid_request(
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )),
    }
}
