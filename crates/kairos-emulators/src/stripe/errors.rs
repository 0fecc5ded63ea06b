//! Stripe's error bodies (docs.stripe.com/api/errors):
//! `{"error": {"type", "code", "message", "param", "doc_url"}}`, with the statuses Stripe uses
//! (400 bad request, 401 bad key, 404 no such object, 429, 5xx). The Python SDK picks its
//! exception class from the status and the type (`idempotency_error` → `IdempotencyError`).

use serde_json::{Map, Value, json};

/// One error answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub type_: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
    /// Whether Stripe saves it under the request's idempotency key: only answers produced
    /// once the endpoint ran (a request that failed validation can be retried with its key).
    pub saved: bool,
}

impl ApiError {
    fn new(status: u16, type_: &'static str, message: impl Into<String>) -> Self {
        Self { status, type_, code: None, message: message.into(), param: None, saved: false }
    }

    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// A 400 about one parameter.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", message).param(param)
    }

    /// A 400 about the request as a whole.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", message)
    }

    pub fn missing(param: &str) -> Self {
        Self::invalid(param, format!("Missing required param: {param}.")).code("parameter_missing")
    }

    pub fn unknown_param(param: &str) -> Self {
        Self::invalid(param, format!("Received unknown parameter: {param}")).code("parameter_unknown")
    }

    pub fn invalid_integer(param: &str, value: &str) -> Self {
        Self::invalid(param, format!("Invalid integer: {value}")).code("parameter_invalid_integer")
    }

    pub fn invalid_enum(param: &str, allowed: &str) -> Self {
        Self::invalid(param, format!("Invalid {param}: must be one of {allowed}")).code("parameter_invalid_string")
    }

    pub fn no_such(kind: &str, id: &str, param: &str) -> Self {
        let mut e = Self::new(404, "invalid_request_error", format!("No such {kind}: '{id}'"))
            .code("resource_missing")
            .param(param);
        e.saved = true;
        e
    }

    /// A 400 about the object's state, once the endpoint ran.
    pub fn state(message: impl Into<String>) -> Self {
        let mut e = Self::new(400, "invalid_request_error", message);
        e.saved = true;
        e
    }

    pub fn idempotency(message: impl Into<String>) -> Self {
        Self::new(400, "idempotency_error", message)
    }

    pub fn no_api_key() -> Self {
        Self::new(
            401,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the Authorization header, using \
             Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication \
             for details, or we can help at https://support.stripe.com/.",
        )
    }

    /// Stripe shows the key's prefix and last four characters only.
    pub fn invalid_api_key(key: &str) -> Self {
        let chars: Vec<char> = key.chars().collect();
        let masked = if chars.len() > 12 {
            let head: String = chars[..8].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}{}{tail}", "*".repeat(chars.len() - 12))
        } else {
            "*".repeat(chars.len())
        };
        Self::new(401, "invalid_request_error", format!("Invalid API Key provided: {masked}")).code("api_key_invalid")
    }

    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at \
                 https://support.stripe.com/."
            ),
        )
    }

    /// A failure injected by a test.
    pub fn injected(status: u16) -> Self {
        match status {
            429 => Self::new(
                429,
                "invalid_request_error",
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            )
            .code("rate_limit"),
            409 => Self::new(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key (that probably means \
                 you submitted twice, and the other request is still going through). Please try again later.",
            )
            .code("idempotency_key_in_use"),
            s if s < 500 => Self::new(s, "invalid_request_error", "The request was refused."),
            s => Self::new(
                s,
                "api_error",
                "An unknown error occurred. Please try again later, or contact us at https://support.stripe.com/.",
            ),
        }
    }

    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.type_));
        error.insert("message".into(), json!(self.message));
        if let Some(code) = self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-"))),
            );
        }
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        json!({ "error": error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_stripes_shape() {
        let e = ApiError::no_such("checkout.session", "cs_test_x", "session");
        assert_eq!(
            e.body(),
            json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
                "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
                "message": "No such checkout.session: 'cs_test_x'", "param": "session"}})
        );
        assert_eq!(e.status, 404);
    }

    #[test]
    fn an_invalid_key_is_masked() {
        let e = ApiError::invalid_api_key("sk_test_abcdefghijklmnop1234");
        assert_eq!(e.message, "Invalid API Key provided: sk_test_****************1234");
        assert!(!ApiError::invalid_api_key("short").message.contains("short"));
    }
}
