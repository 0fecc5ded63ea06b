//! Checkout Sessions: creation with the checks Stripe makes, the object Stripe returns
//! (docs.stripe.com/api/checkout/sessions/object), its line items, and its status changes
//! (open → complete, open → expired).

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::errors::ApiError;
use super::opaque;

/// A session as held in memory: the object the API returns, and its line items (which Stripe
/// only shows through their own endpoint).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub object: Map<String, Value>,
    pub line_items: Vec<Value>,
}

impl Session {
    pub fn id(&self) -> &str {
        self.object.get("id").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn status(&self) -> &str {
        self.object.get("status").and_then(Value::as_str).unwrap_or_default()
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.object.get(key).and_then(Value::as_str)
    }

    pub fn expires_at(&self) -> i64 {
        self.object.get("expires_at").and_then(Value::as_i64).unwrap_or(i64::MAX)
    }

    /// Where the hosted page sends the customer after paying.
    pub fn success_url(&self) -> Option<String> {
        Some(self.text("success_url")?.replace("{CHECKOUT_SESSION_ID}", self.id()))
    }

    pub fn cancel_url(&self) -> Option<&str> {
        self.text("cancel_url")
    }

    /// `(description, amount, currency)` of each line item, for the hosted page.
    pub fn summary(&self) -> Vec<(String, i64, String)> {
        self.line_items
            .iter()
            .map(|li| {
                let text = |k: &str| li.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                (text("description"), li.get("amount_total").and_then(Value::as_i64).unwrap_or(0), text("currency"))
            })
            .collect()
    }

    /// The customer paid (or, with `paid == false`, submitted a delayed payment method that
    /// has not settled yet). Stripe clears `url` once a session is no longer open.
    pub fn complete(&mut self, paid: bool) {
        let email = self.text("customer_email").unwrap_or("jenny.rosen@example.com").to_string();
        let payment = self.text("mode") == Some("payment");
        let o = &mut self.object;
        o.insert("status".into(), json!("complete"));
        o.insert("url".into(), Value::Null);
        if payment {
            o.insert("payment_status".into(), json!(if paid { "paid" } else { "unpaid" }));
            o.insert("payment_intent".into(), json!(opaque("pi_", 24)));
        }
        o.insert(
            "customer_details".into(),
            json!({
                "address": {"city": null, "country": "US", "line1": null, "line2": null,
                            "postal_code": "94103", "state": null},
                "business_name": null, "email": email, "individual_name": null, "name": "Jenny Rosen",
                "phone": null, "tax_exempt": "none", "tax_ids": []
            }),
        );
    }

    /// A delayed payment settled (or failed: the session stays `unpaid`).
    pub fn settle(&mut self, succeeded: bool) {
        if succeeded {
            self.object.insert("payment_status".into(), json!("paid"));
        }
    }

    pub fn expire(&mut self) {
        self.object.insert("status".into(), json!("expired"));
        self.object.insert("url".into(), Value::Null);
    }
}

/// Every parameter `POST /v1/checkout/sessions` takes; anything else is refused, as Stripe does.
const CREATE_PARAMS: &[&str] = &[
    "adaptive_pricing",
    "after_expiration",
    "allow_promotion_codes",
    "automatic_tax",
    "billing_address_collection",
    "branding_settings",
    "cancel_url",
    "client_reference_id",
    "consent_collection",
    "currency",
    "custom_fields",
    "custom_text",
    "customer",
    "customer_creation",
    "customer_email",
    "customer_update",
    "discounts",
    "expand",
    "expires_at",
    "invoice_creation",
    "line_items",
    "locale",
    "metadata",
    "mode",
    "name_collection",
    "optional_items",
    "origin_context",
    "payment_intent_data",
    "payment_method_collection",
    "payment_method_configuration",
    "payment_method_data",
    "payment_method_options",
    "payment_method_types",
    "permissions",
    "phone_number_collection",
    "redirect_on_completion",
    "return_url",
    "saved_payment_method_options",
    "setup_intent_data",
    "shipping_address_collection",
    "shipping_options",
    "submit_type",
    "subscription_data",
    "success_url",
    "tax_id_collection",
    "ui_mode",
    "wallet_options",
];

/// The largest amount Stripe charges in one payment, in minor units.
const MAX_AMOUNT: i64 = 99_999_999;

/// A non-empty string parameter.
fn text<'a>(params: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An integer parameter (they arrive as strings).
fn integer(params: &Map<String, Value>, key: &str, param: &str) -> Result<Option<i64>, ApiError> {
    match params.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| ApiError::invalid_integer(param, s)),
        Some(_) => Err(ApiError::invalid_integer(param, "(an object)")),
    }
}

fn object<'a>(value: &'a Value, param: &str) -> Result<&'a Map<String, Value>, ApiError> {
    value.as_object().ok_or_else(|| ApiError::invalid(param, "Invalid object"))
}

fn check_url(params: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    let Some(url) = text(params, key) else { return Ok(None) };
    let absolute = url.starts_with("https://") || url.starts_with("http://");
    if !absolute || url.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid(key, "Not a valid URL"));
    }
    Ok(Some(url.to_string()))
}

/// A line item as `GET /v1/checkout/sessions/{id}/line_items` lists it.
struct LineItem {
    description: String,
    currency: String,
    unit_amount: i64,
    quantity: i64,
}

impl LineItem {
    fn total(&self) -> Option<i64> {
        self.unit_amount.checked_mul(self.quantity)
    }

    fn to_json(&self, created: i64) -> Value {
        let total = self.total().unwrap_or(i64::MAX);
        json!({
            "id": opaque("li_", 24), "object": "item",
            "amount_discount": 0, "amount_subtotal": total, "amount_tax": 0, "amount_total": total,
            "currency": self.currency, "description": self.description,
            "price": {
                "id": opaque("price_", 24), "object": "price", "active": false, "billing_scheme": "per_unit",
                "created": created, "currency": self.currency, "custom_unit_amount": null, "livemode": false,
                "lookup_key": null, "metadata": {}, "nickname": null, "product": opaque("prod_", 14),
                "recurring": null, "tax_behavior": "unspecified", "tiers_mode": null,
                "transform_quantity": null, "type": "one_time", "unit_amount": self.unit_amount,
                "unit_amount_decimal": self.unit_amount.to_string()
            },
            "quantity": self.quantity
        })
    }
}

fn line_item(i: usize, value: &Value) -> Result<LineItem, ApiError> {
    let at = |k: &str| format!("line_items[{i}][{k}]");
    let item = object(value, &format!("line_items[{i}]"))?;
    if let Some(price) = text(item, "price") {
        // The emulator has no catalogue: only inline prices exist.
        return Err(ApiError::no_such("price", price, &at("price")));
    }
    let Some(price_data) = item.get("price_data") else {
        return Err(ApiError::invalid(
            format!("line_items[{i}]"),
            format!("You must specify either `price` or `price_data` in `line_items[{i}]`."),
        ));
    };
    let price_data = object(price_data, &at("price_data"))?;
    let pd = |k: &str| format!("line_items[{i}][price_data][{k}]");
    let currency = text(price_data, "currency").ok_or_else(|| ApiError::missing(&pd("currency")))?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ApiError::invalid(pd("currency"), format!("Invalid currency: {currency}.")));
    }
    if price_data.contains_key("recurring") {
        return Err(ApiError::invalid(
            pd("recurring"),
            "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use \
             only one-time prices.",
        ));
    }
    if let Some(product) = text(price_data, "product") {
        return Err(ApiError::no_such("product", product, &pd("product")));
    }
    let product_data = price_data.get("product_data").ok_or_else(|| ApiError::missing(&pd("product_data")))?;
    let name_param = format!("line_items[{i}][price_data][product_data][name]");
    let description = text(object(product_data, &pd("product_data"))?, "name")
        .ok_or_else(|| ApiError::missing(&name_param))?
        .to_string();
    let unit_amount =
        integer(price_data, "unit_amount", &pd("unit_amount"))?.ok_or_else(|| ApiError::missing(&pd("unit_amount")))?;
    if unit_amount < 0 {
        return Err(ApiError::invalid(pd("unit_amount"), "This value must be greater than or equal to 0."));
    }
    let quantity = integer(item, "quantity", &at("quantity"))?.ok_or_else(|| ApiError::missing(&at("quantity")))?;
    if quantity < 1 {
        return Err(ApiError::invalid(at("quantity"), "This value must be greater than or equal to 1."));
    }
    Ok(LineItem { description, currency: currency.to_ascii_lowercase(), unit_amount, quantity })
}

fn metadata(params: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let Some(value) = params.get("metadata") else { return Ok(Map::new()) };
    if value.as_str() == Some("") {
        return Ok(Map::new());
    }
    let map = object(value, "metadata")?;
    if map.len() > 50 {
        return Err(ApiError::invalid("metadata", "You can specify up to 50 keys in metadata."));
    }
    let mut out = Map::new();
    for (key, value) in map {
        let param = format!("metadata[{key}]");
        let Some(value) = value.as_str() else { return Err(ApiError::invalid(param, "Invalid string")) };
        if key.chars().count() > 40 {
            return Err(ApiError::invalid(param, "Metadata keys can have up to 40 characters."));
        }
        if value.chars().count() > 500 {
            return Err(ApiError::invalid(
                param,
                format!("Metadata values can have up to 500 characters, but you passed in {}.", value.chars().count()),
            ));
        }
        // An empty value unsets a key; at creation there is nothing to unset.
        if !value.is_empty() {
            out.insert(key.clone(), json!(value));
        }
    }
    Ok(out)
}

/// `expires_at`: 30 minutes to 24 hours after creation; 24 hours when absent.
fn expires_at(params: &Map<String, Value>, now: i64) -> Result<i64, ApiError> {
    let Some(at) = integer(params, "expires_at", "expires_at")? else { return Ok(now + 24 * 3600) };
    if at < now + 30 * 60 {
        return Err(ApiError::invalid(
            "expires_at",
            "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
        ));
    }
    if at > now + 24 * 3600 {
        return Err(ApiError::invalid(
            "expires_at",
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
        ));
    }
    Ok(at)
}

/// `POST /v1/checkout/sessions`, checked the way Stripe checks it.
pub(crate) fn create(params: &Map<String, Value>, now: Timestamp, base_url: &str) -> Result<Session, ApiError> {
    if let Some(unknown) = params.keys().find(|k| !CREATE_PARAMS.contains(&k.as_str())) {
        return Err(ApiError::unknown_param(unknown));
    }
    let mode = text(params, "mode").ok_or_else(|| ApiError::missing("mode"))?;
    match mode {
        "payment" | "setup" => {}
        "subscription" => return Err(ApiError::invalid("mode", "The Stripe emulator does not support subscriptions.")),
        _ => return Err(ApiError::invalid_enum("mode", "payment, setup, or subscription")),
    }
    let ui_mode = text(params, "ui_mode").unwrap_or("hosted_page");
    if !["hosted_page", "embedded_page", "elements", "hosted", "embedded", "custom"].contains(&ui_mode) {
        return Err(ApiError::invalid_enum("ui_mode", "hosted_page, embedded_page, or elements"));
    }
    let hosted = matches!(ui_mode, "hosted_page" | "hosted");
    let success_url = check_url(params, "success_url")?;
    let cancel_url = check_url(params, "cancel_url")?;
    let return_url = check_url(params, "return_url")?;
    if hosted && success_url.is_none() {
        return Err(ApiError::missing("success_url"));
    }
    if !hosted {
        for (key, given) in [("success_url", &success_url), ("cancel_url", &cancel_url)] {
            if given.is_some() {
                return Err(ApiError::invalid(key, format!("`{key}` is not allowed when `ui_mode` is `{ui_mode}`.")));
            }
        }
        if return_url.is_none() && text(params, "redirect_on_completion") != Some("never") {
            return Err(ApiError::missing("return_url"));
        }
    }

    let items = match (mode, params.get("line_items")) {
        ("payment", None) => return Err(ApiError::missing("line_items")),
        (_, None) => vec![],
        (_, Some(Value::Array(items))) => {
            items.iter().enumerate().map(|(i, item)| line_item(i, item)).collect::<Result<Vec<_>, _>>()?
        }
        (_, Some(_)) => return Err(ApiError::invalid("line_items", "Invalid array")),
    };
    if items.windows(2).any(|w| w[0].currency != w[1].currency) {
        return Err(ApiError::invalid("line_items", "All line items must use the same currency."));
    }
    let total = items.iter().try_fold(0i64, |sum, item| item.total().and_then(|t| sum.checked_add(t)));
    let total = match total {
        Some(t) if t <= MAX_AMOUNT => t,
        _ => return Err(ApiError::invalid("line_items", format!("Amount must be no more than {MAX_AMOUNT}."))),
    };

    let metadata = metadata(params)?;
    let client_reference_id = text(params, "client_reference_id");
    if client_reference_id.is_some_and(|r| r.chars().count() > 200) {
        return Err(ApiError::invalid("client_reference_id", "Invalid string: must be at most 200 characters"));
    }
    let customer_email = text(params, "customer_email");
    if let Some(email) = customer_email {
        let valid = email.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.'));
        if !valid {
            return Err(ApiError::invalid("customer_email", format!("Invalid email address: {email}")));
        }
    }
    if let Some(customer) = text(params, "customer") {
        return Err(ApiError::no_such("customer", customer, "customer"));
    }
    let created = now.as_second();
    let expires_at = expires_at(params, created)?;

    let id = opaque("cs_test_", 58);
    let payment = mode == "payment";
    let currency = items.first().map(|i| i.currency.clone()).or_else(|| text(params, "currency").map(str::to_string));
    let amount = payment.then_some(total);
    // Two halves: one json! of every field exceeds the macro recursion limit.
    let head = json!({
        "id": id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": false},
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": null,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": (!hosted).then(|| format!("{id}_secret_{}", opaque("", 24))),
        "collected_information": null,
        "consent": null,
        "consent_collection": null,
        "created": created,
        "currency": currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": {"after_submit": null, "shipping_address": null, "submit": null,
                        "terms_of_service_acceptance": null},
        "customer": null,
        "customer_creation": "if_required",
        "customer_details": null,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "invoice": null,
    });
    let tail = json!({
        "invoice_creation": payment.then(|| json!({"enabled": false, "invoice_data": {
            "account_tax_ids": null, "custom_fields": null, "description": null, "footer": null,
            "issuer": null, "metadata": {}, "rendering_options": null}})),
        "livemode": false,
        "locale": text(params, "locale"),
        "metadata": metadata,
        "mode": mode,
        "origin_context": null,
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": if payment { "unpaid" } else { "no_payment_required" },
        "permissions": null,
        "phone_number_collection": {"enabled": false},
        "recovered_from": null,
        "return_url": return_url,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": success_url,
        "total_details": payment.then(|| json!({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0})),
        "ui_mode": ui_mode,
        "url": hosted.then(|| format!("{base_url}/c/pay/{id}")),
        "wallet_options": null
    });
    let mut object = Map::new();
    for half in [head, tail] {
        if let Value::Object(fields) = half {
            object.extend(fields);
        }
    }
    let line_items = items.iter().map(|i| i.to_json(created)).collect();
    Ok(Session { object, line_items })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::form;

    const NOW: i64 = 1_767_225_600;

    fn params(extra: &[(&str, &str)]) -> Map<String, Value> {
        let mut pairs: Vec<(String, String)> = [
            ("mode", "payment"),
            ("success_url", "https://example.com/ok?s={CHECKOUT_SESSION_ID}"),
            ("cancel_url", "https://example.com/cancel"),
            ("line_items[0][price_data][currency]", "eur"),
            ("line_items[0][price_data][unit_amount]", "4500"),
            ("line_items[0][price_data][product_data][name]", "Consultation"),
            ("line_items[0][quantity]", "1"),
            ("metadata[booking_id]", "bkg_01"),
            ("client_reference_id", "bkg_01"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            pairs.retain(|(key, _)| key != k);
            if !v.is_empty() {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        form::parse(&pairs).unwrap()
    }

    fn create_at(p: &Map<String, Value>) -> Result<Session, ApiError> {
        create(p, Timestamp::from_second(NOW).unwrap(), "http://emu")
    }

    #[test]
    fn a_valid_request_makes_an_open_unpaid_session() {
        let s = create_at(&params(&[("expires_at", &(NOW + 3600).to_string())])).unwrap();
        let o = Value::Object(s.object.clone());
        assert!(s.id().starts_with("cs_test_"));
        assert_eq!(o["object"], "checkout.session");
        assert_eq!(o["status"], "open");
        assert_eq!(o["payment_status"], "unpaid");
        assert_eq!(o["amount_total"], 4500);
        assert_eq!(o["currency"], "eur");
        assert_eq!(o["metadata"], json!({"booking_id": "bkg_01"}));
        assert_eq!(o["expires_at"], NOW + 3600);
        assert_eq!(o["url"], format!("http://emu/c/pay/{}", s.id()));
        assert_eq!(s.success_url().unwrap(), format!("https://example.com/ok?s={}", s.id()));
        assert_eq!(s.line_items[0]["description"], "Consultation");
        let defaulted = create_at(&params(&[])).unwrap();
        assert_eq!(defaulted.expires_at(), NOW + 24 * 3600);
    }

    #[test]
    fn expires_at_must_be_30_minutes_to_24_hours_ahead() {
        for (offset, ok) in [(1799, false), (1800, true), (86400, true), (86401, false)] {
            let result = create_at(&params(&[("expires_at", &(NOW + offset).to_string())]));
            assert_eq!(result.is_ok(), ok, "{offset}");
            if let Err(e) = result {
                assert_eq!((e.status, e.param.as_deref()), (400, Some("expires_at")));
            }
        }
        let e = create_at(&params(&[("expires_at", "soon")])).unwrap_err();
        assert_eq!(e.code, Some("parameter_invalid_integer"));
    }

    #[test]
    fn missing_and_unknown_parameters_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("mode", "")], "mode"),
            (&[("success_url", "")], "success_url"),
            (&[("nonsense", "1")], "nonsense"),
            (&[("line_items[0][quantity]", "")], "line_items[0][quantity]"),
            (&[("line_items[0][price_data][currency]", "")], "line_items[0][price_data][currency]"),
            (&[("line_items[0][price_data][product_data][name]", "")], "line_items[0][price_data][product_data]"),
            (
                &[
                    ("line_items[0][price_data][product_data][name]", ""),
                    ("line_items[0][price_data][product_data][description]", "x"),
                ],
                "line_items[0][price_data][product_data][name]",
            ),
            (&[("line_items[0][price_data][unit_amount]", "-1")], "line_items[0][price_data][unit_amount]"),
            (&[("customer_email", "nobody")], "customer_email"),
            (&[("success_url", "example.com/ok")], "success_url"),
        ];
        for (extra, param) in cases {
            let e = create_at(&params(extra)).unwrap_err();
            assert_eq!((e.status, e.param.as_deref()), (400, Some(*param)), "{extra:?}");
            assert!(!e.saved, "validation errors are not saved under the idempotency key");
        }
        let mut no_items = params(&[]);
        no_items.remove("line_items");
        assert_eq!(create_at(&no_items).unwrap_err().param.as_deref(), Some("line_items"));
    }

    #[test]
    fn completing_and_expiring_clear_the_url() {
        let mut s = create_at(&params(&[("customer_email", "ann@example.com")])).unwrap();
        s.complete(true);
        assert_eq!((s.status(), s.object["payment_status"].as_str()), ("complete", Some("paid")));
        assert_eq!(s.object["url"], Value::Null);
        assert_eq!(s.object["customer_details"]["email"], "ann@example.com");
        let mut e = create_at(&params(&[])).unwrap();
        e.expire();
        assert_eq!((e.status(), &e.object["url"]), ("expired", &Value::Null));
    }
}
