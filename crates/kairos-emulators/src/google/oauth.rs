//! Google's OAuth 2.0 endpoints for a web-server app: the consent page (which consents at
//! once as the emulated account), the token endpoint (authorization code with PKCE, refresh
//! token) and revocation, with Google's error bodies.

use std::collections::{HashMap, HashSet};

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::GoogleEmulator;
use super::state::opaque;

#[derive(Debug, Clone)]
struct Code {
    redirect_uri: String,
    scope: String,
    /// `(code_challenge, method)`.
    challenge: Option<(String, String)>,
    offline: bool,
}

#[derive(Debug, Clone)]
struct Access {
    refresh: Option<String>,
    expires_at: Timestamp,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct Refresh {
    scope: String,
    revoked: bool,
}

/// Issued codes and tokens.
#[derive(Debug)]
pub(crate) struct Grants {
    codes: HashMap<String, Code>,
    used_codes: HashSet<String>,
    refresh: HashMap<String, Refresh>,
    access: HashMap<String, Access>,
    pub lifetime_secs: u64,
    pub refresh_grants: usize,
    pub revoked: Vec<String>,
}

impl Default for Grants {
    fn default() -> Self {
        Self {
            codes: HashMap::new(),
            used_codes: HashSet::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            lifetime_secs: 3599,
            refresh_grants: 0,
            revoked: Vec::new(),
        }
    }
}

impl Grants {
    /// Whether a bearer token may call the API now.
    pub fn access_valid(&self, token: &str, now: Timestamp) -> bool {
        self.access.get(token).is_some_and(|a| !a.revoked && a.expires_at > now)
    }

    pub fn expire_access(&mut self) {
        let past = Timestamp::now().checked_sub(SignedDuration::from_secs(1)).unwrap_or(Timestamp::UNIX_EPOCH);
        for a in self.access.values_mut() {
            a.expires_at = past;
        }
    }

    pub fn revoke_all(&mut self) {
        self.refresh.values_mut().for_each(|r| r.revoked = true);
        self.access.values_mut().for_each(|a| a.revoked = true);
    }

    fn issue_access(&mut self, refresh: Option<String>) -> String {
        let token = opaque("ya29.a0", 120);
        let lifetime = i64::try_from(self.lifetime_secs).unwrap_or(i64::MAX);
        let expires_at = Timestamp::now().checked_add(SignedDuration::from_secs(lifetime)).unwrap_or(Timestamp::MAX);
        self.access.insert(token.clone(), Access { refresh, expires_at, revoked: false });
        token
    }

    /// Revokes a token and everything of its grant (an access token's refresh token too, as
    /// Google documents). `false` when the token is unknown or already revoked.
    fn revoke(&mut self, token: &str) -> bool {
        let grant = match (self.refresh.get(token), self.access.get(token)) {
            (Some(r), _) if !r.revoked => Some(token.to_string()),
            (_, Some(a)) if !a.revoked => a.refresh.clone(),
            _ => return false,
        };
        if let Some(a) = self.access.get_mut(token) {
            a.revoked = true;
        }
        if let Some(grant) = grant {
            if let Some(r) = self.refresh.get_mut(&grant) {
                r.revoked = true;
            }
            self.access
                .values_mut()
                .filter(|a| a.refresh.as_deref() == Some(grant.as_str()))
                .for_each(|a| a.revoked = true);
        }
        self.revoked.push(token.to_string());
        true
    }
}

fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><title>Error</title></head><body><h1>Access blocked: Authorization Error</h1>\
         <p>{title}</p><p>{detail}</p></body></html>"
    );
    (status, Html(page)).into_response()
}

/// `GET /o/oauth2/v2/auth`: the account consents at once; 302 back with the code.
pub(crate) async fn authorize(State(emu): State<GoogleEmulator>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("client_id") != Some(GoogleEmulator::CLIENT_ID) {
        return error_page(StatusCode::BAD_REQUEST, "Error 401: invalid_client", "The OAuth client was not found.");
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Error 400: invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return error_page(StatusCode::BAD_REQUEST, "Error 400: redirect_uri_mismatch", "Invalid redirect_uri");
    };
    let Some(scope) = get("scope") else {
        return error_page(StatusCode::BAD_REQUEST, "Error 400: invalid_request", "Missing required parameter: scope");
    };
    if get("response_type") != Some("code") {
        let mut pairs = target.query_pairs_mut();
        pairs.append_pair("error", "unsupported_response_type");
        if let Some(state) = get("state") {
            pairs.append_pair("state", state);
        }
        drop(pairs);
        return Redirect::to(target.as_str()).into_response();
    }
    let challenge = match (get("code_challenge"), get("code_challenge_method").unwrap_or("plain")) {
        (None, _) => None,
        (Some(c), method @ ("S256" | "plain")) => Some((c.to_string(), method.to_string())),
        (Some(_), _) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Error 400: invalid_request",
                "Invalid code_challenge_method value.",
            );
        }
    };
    let code = opaque("4/0A", 70);
    let grant = Code {
        redirect_uri: redirect_uri.to_string(),
        scope: scope.to_string(),
        challenge,
        offline: get("access_type") == Some("offline"),
    };
    emu.with_state(|s| s.grants.codes.insert(code.clone(), grant));
    {
        let mut pairs = target.query_pairs_mut();
        if let Some(state) = get("state") {
            pairs.append_pair("state", state);
        }
        pairs.append_pair("code", &code).append_pair("scope", scope).append_pair("authuser", "0");
        pairs.append_pair("prompt", "consent");
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, axum::Json(json!({"error": error, "error_description": description}))).into_response()
}

/// The client's credentials: form fields (`client_secret_post`) or HTTP Basic.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())));
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (form.get("client_id").cloned(), form.get("client_secret").cloned()),
    }
}

/// `POST /token`.
pub(crate) async fn token(
    State(emu): State<GoogleEmulator>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (client_id, secret) = client_credentials(&headers, &form);
    if client_id.as_deref() != Some(GoogleEmulator::CLIENT_ID) {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client", "The OAuth client was not found.");
    }
    if secret.as_deref() != Some(GoogleEmulator::CLIENT_SECRET) {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match field("grant_type") {
        Some("authorization_code") => {
            let Some(code) = field("code") else {
                return token_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing required parameter: code");
            };
            emu.with_state(|s| {
                let Some(grant) = s.grants.codes.remove(code) else {
                    let description =
                        if s.grants.used_codes.contains(code) { "Bad Request" } else { "Malformed auth code." };
                    return token_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
                };
                s.grants.used_codes.insert(code.to_string());
                if field("redirect_uri") != Some(grant.redirect_uri.as_str()) {
                    return token_error(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", "Bad Request");
                }
                if let Some((challenge, method)) = &grant.challenge {
                    let Some(verifier) = field("code_verifier") else {
                        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "Missing code verifier.");
                    };
                    let computed = match method.as_str() {
                        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                        _ => verifier.to_string(),
                    };
                    if &computed != challenge {
                        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid code verifier.");
                    }
                }
                let refresh = grant.offline.then(|| opaque("1//0", 100));
                if let Some(r) = &refresh {
                    s.grants.refresh.insert(r.clone(), Refresh { scope: grant.scope.clone(), revoked: false });
                }
                let access = s.grants.issue_access(refresh.clone());
                let mut body = json!({
                    "access_token": access,
                    "expires_in": s.grants.lifetime_secs,
                    "scope": grant.scope,
                    "token_type": "Bearer",
                });
                if let (Some(r), Some(map)) = (refresh, body.as_object_mut()) {
                    map.insert("refresh_token".into(), json!(r));
                }
                token_ok(body)
            })
        }
        Some("refresh_token") => {
            let Some(refresh) = field("refresh_token") else {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing required parameter: refresh_token",
                );
            };
            emu.with_state(|s| {
                let Some(grant) = s.grants.refresh.get(refresh).filter(|r| !r.revoked).cloned() else {
                    return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "Token has been expired or revoked.");
                };
                s.grants.refresh_grants += 1;
                let access = s.grants.issue_access(Some(refresh.to_string()));
                token_ok(json!({
                    "access_token": access,
                    "expires_in": s.grants.lifetime_secs,
                    "scope": grant.scope,
                    "token_type": "Bearer",
                }))
            })
        }
        Some(other) => {
            token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &format!("Invalid grant_type: {other}"))
        }
        None => token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Invalid grant_type: "),
    }
}

fn token_ok(body: serde_json::Value) -> Response {
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-cache, no-store, max-age=0, must-revalidate")], axum::Json(body))
        .into_response()
}

/// `POST /revoke` with `token` in the form body or the query.
pub(crate) async fn revoke(
    State(emu): State<GoogleEmulator>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let from_body =
        url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned());
    let Some(token) = from_body.or_else(|| query.get("token").cloned()) else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing required parameter: token");
    };
    if emu.with_state(|s| s.grants.revoke(&token)) {
        StatusCode::OK.into_response()
    } else {
        token_error(StatusCode::BAD_REQUEST, "invalid_token", "Token expired or revoked")
    }
}
