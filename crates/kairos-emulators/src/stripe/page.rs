//! The hosted payment page a session's `url` points at (Stripe's is `checkout.stripe.com/c/pay/…`):
//! what is being bought, a Pay button that completes the session (delivering
//! `checkout.session.completed`) and redirects to `success_url`, and a link back to `cancel_url`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::StripeEmulator;
use super::events::Cause;

/// Currencies without a minor unit (docs.stripe.com/currencies#zero-decimal).
const ZERO_DECIMAL: &[&str] =
    &["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn money(amount: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency) {
        format!("{amount} {code}")
    } else {
        format!("{}.{:02} {code}", amount / 100, (amount % 100).abs())
    }
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><main>{body}</main></body></html>",
        escape(title)
    ))
    .into_response()
}

/// `GET /c/pay/{id}`.
pub(crate) async fn show(State(emu): State<StripeEmulator>, Path(id): Path<String>) -> Response {
    let (view, due) = emu.with_state(|s| {
        let due = s.expire_due();
        let view = s.session(&id).map(|x| (x.status().to_string(), x.summary(), x.cancel_url().map(str::to_string)));
        (view, due)
    });
    emu.send_later(due);
    let Some((status, items, cancel_url)) = view else {
        let body = "<h1>Something went wrong</h1><p>The page you were looking for could not be found.</p>";
        return (StatusCode::NOT_FOUND, page("Stripe Checkout", body)).into_response();
    };
    match status.as_str() {
        "open" => {
            let rows: String = items
                .iter()
                .map(|(name, amount, currency)| format!("<li>{} — {}</li>", escape(name), money(*amount, currency)))
                .collect();
            let cancel = cancel_url
                .map(|url| format!("<p><a id=\"cancel\" href=\"{}\">Back</a></p>", escape(&url)))
                .unwrap_or_default();
            let body = format!(
                "<h1>Pay</h1><ul id=\"items\">{rows}</ul>\
                 <form method=\"post\"><button id=\"pay\" type=\"submit\">Pay</button></form>{cancel}"
            );
            page("Stripe Checkout", &body)
        }
        "complete" => page("Stripe Checkout", "<h1>Thanks for your payment</h1><p>This session is complete.</p>"),
        _ => page(
            "Stripe Checkout",
            "<h1>This Checkout Session is no longer active</h1><p>This Checkout Session has expired.</p>",
        ),
    }
}

/// `POST /c/pay/{id}`: the customer pays.
pub(crate) async fn pay(State(emu): State<StripeEmulator>, Path(id): Path<String>) -> Response {
    let outcome = emu.with_state(|s| {
        let mut events = s.expire_due();
        let session = s.session(&id)?;
        if session.status() != "open" {
            return Some((None, events));
        }
        session.complete(true);
        let success_url = session.success_url();
        let object = Value::Object(session.object.clone());
        events.push(s.record("checkout.session.completed", object, &Cause::default()));
        Some((success_url, events))
    });
    let Some((success_url, events)) = outcome else {
        return (StatusCode::NOT_FOUND, page("Stripe Checkout", "<h1>Something went wrong</h1>")).into_response();
    };
    emu.send_later(events);
    match success_url {
        Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        None => (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/c/pay/{id}"))]).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_show_in_major_units_except_zero_decimal_currencies() {
        assert_eq!(money(4500, "eur"), "45.00 EUR");
        assert_eq!(money(5, "usd"), "0.05 USD");
        assert_eq!(money(4500, "jpy"), "4500 JPY");
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("<b>\"A&B\"</b>"), "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;");
    }
}
