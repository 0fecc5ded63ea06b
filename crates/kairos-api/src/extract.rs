//! Extractors that turn requests into typed values or the contract's errors: malformed JSON is
//! a 400; a well-formed body or query with a bad field is a 422 whose `param` is the field's
//! path (`working_hours.monday[0].start`) and whose message says what to send instead.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use kairos_store::Tenant;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body. An empty body reads as `{}` so that endpoints whose fields are all optional
/// (cancel) accept a bare POST. Any content type is read as JSON: `curl -d` sends a form type.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes =
            axum::body::to_bytes(req.into_body(), BODY_LIMIT).await.map_err(|_| ApiError::too_large(BODY_LIMIT))?;
        json_body(&bytes).map(ApiJson)
    }
}

/// Reads a JSON object body under [`ApiJson`]'s rules, for handlers that read the body
/// themselves (a page route that takes forms and JSON alike).
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    // serde would read a JSON array as a struct's fields in order; the API takes objects.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::malformed("The body must be a JSON object, e.g. {\"name\": \"…\"}."));
    }
    // Plain serde first; only a failed parse pays for tracking the path to the bad field.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(|e| {
        ApiError::malformed(format!("The body has data after the JSON value ({e}); send exactly one JSON object."))
    })?;
    Ok(value)
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let inner = e.inner();
    match inner.classify() {
        Category::Data => field_error(&e.path().to_string(), &inner.to_string()),
        _ => ApiError::malformed(format!(
            "The body is not valid JSON ({inner}). Send one JSON object, e.g. {{\"name\": \"…\"}}, with Content-Type: application/json."
        )),
    }
}

/// A 422 for a data error at `path` (serde's `.` is the root), or a 400 when the body as a
/// whole has the wrong shape.
fn field_error(path: &str, raw: &str) -> ApiError {
    let message = raw.rfind(" at line ").map_or(raw, |at| &raw[..at]).to_string();
    // serde_path_to_error's path ends at an unknown or duplicate key already, but stops at
    // the parent of a missing one.
    let named = |prefix: &str| {
        message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(|field| {
            if path == field || path.ends_with(&format!(".{field}")) { path.to_string() } else { join(path, field) }
        })
    };
    if let Some(field) = named("missing field `") {
        return ApiError::missing(&field, format!("`{field}` is required."));
    }
    if let Some(field) = named("unknown field `") {
        let expected =
            message.split_once(", expected").map(|(_, rest)| format!(": expected{rest}")).unwrap_or_default();
        return ApiError::invalid(
            &field,
            format!("`{field}` is not a field of this request{expected}. Remove it or check its spelling."),
        );
    }
    if let Some(field) = named("duplicate field `") {
        return ApiError::invalid(&field, format!("`{field}` is given twice (or with its alias); give it once."));
    }
    if path == "." || path.is_empty() {
        return ApiError::malformed(format!("The body has the wrong shape: {message}. Send a JSON object."));
    }
    ApiError::invalid(path, format!("`{path}` is invalid: {message}."))
}

fn join(path: &str, field: &str) -> String {
    if path == "." || path.is_empty() { field.to_string() } else { format!("{path}.{field}") }
}

/// Query parameters, with the same error rules as [`ApiJson`].
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        if let Ok(value) = serde_urlencoded::from_str(query) {
            return Ok(ApiQuery(value));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            match field_error(&path, &inner) {
                e if e.param.is_some() => e,
                _ => ApiError::invalid(path.clone(), format!("the query parameter `{path}` is invalid: {inner}")),
            }
        })
    }
}

/// The caller's tenant, put in the request by the auth middleware.
pub struct Auth(pub Tenant);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Tenant>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| ApiError::unauthorized("Send your API key as `Authorization: Bearer sk_…`."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_name_the_field_and_the_fix() {
        let e = field_error(".", "missing field `email` at line 1 column 2");
        assert_eq!((e.status.as_u16(), e.param.as_deref(), e.code), (422, Some("email"), "parameter_missing"));
        let e = field_error(
            "working_hours",
            "unknown day `mon`: use lowercase English day names, monday to sunday at line 1 column 30",
        );
        assert_eq!(e.param.as_deref(), Some("working_hours"));
        assert!(e.message.contains("monday to sunday") && !e.message.contains("line 1"));
        let e = field_error(".", "unknown field `nmae`, expected one of `name`, `email` at line 1 column 7");
        assert_eq!(e.param.as_deref(), Some("nmae"));
        assert!(e.message.contains("expected one of"));
        let e = field_error("nmae", "unknown field `nmae`, expected one of `name`, `email` at line 1 column 7");
        assert_eq!(e.param.as_deref(), Some("nmae"));
        let e = field_error("attendees[0].name", "unknown field `name`, expected `email`");
        assert_eq!(e.param.as_deref(), Some("attendees[0].name"));
        let e = field_error("attendees[0]", "missing field `email`");
        assert_eq!(e.param.as_deref(), Some("attendees[0].email"));
        assert_eq!(field_error(".", "invalid type: sequence, expected struct X").status.as_u16(), 400);
    }
}
