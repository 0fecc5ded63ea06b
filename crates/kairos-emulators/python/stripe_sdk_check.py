"""Fidelity check: Stripe's own Python library (PyPI `stripe`) against the Kairos Stripe
emulator. If the library reads every answer, raises the exception classes Stripe's real errors
raise, and verifies the emulator's webhook signatures, the emulator speaks Stripe's wire format
closely enough for real clients.

Usage:
  stripe_sdk_check.py api BASE_URL SECRET_KEY
      Creates, replays, retrieves, lists the line items of and expires a Checkout Session with
      the parameters Kairos sends; checks the error classes; finally creates one more session
      and prints `pay: <id>` for the Rust test to complete.
  stripe_sdk_check.py webhook PAYLOAD_FILE SIGNATURE STALE_SIGNATURE WEBHOOK_SECRET SESSION_ID
      Verifies an emulator-signed `checkout.session.completed` delivery with
      `stripe.Webhook.construct_event`, and that a tampered body, a stale timestamp and a wrong
      secret raise `SignatureVerificationError`.

The Rust side is crates/kairos-emulators/tests/stripe_sdk.rs. Each check prints `ok: …`; the
first failure raises and exits non-zero.
"""

import sys
import time

import stripe


def ok(what):
    print(f"ok: {what}", flush=True)


def expect(exception, call, what):
    try:
        call()
    except exception as e:
        ok(what)
        return e
    raise AssertionError(f"{what}: no {exception.__name__} raised")


def kairos_params(booking_id, amount=4500):
    """Exactly what kairos-providers' StripeClient sends for one booking."""
    return dict(
        mode="payment",
        success_url="https://kairos.example/pay/done?session={CHECKOUT_SESSION_ID}",
        cancel_url="https://kairos.example/pay/cancelled",
        line_items=[
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": amount,
                    "product_data": {"name": "Consultation (60 min)"},
                },
                "quantity": 1,
            }
        ],
        metadata={"booking_id": booking_id},
        client_reference_id=booking_id,
        customer_email="ann@example.com",
        expires_at=int(time.time()) + 3600,
    )


def api(base_url, secret_key):
    stripe.api_key = secret_key
    stripe.api_base = base_url
    stripe.max_network_retries = 0

    params = kairos_params("bkg_sdk_1")
    session = stripe.checkout.Session.create(**params, idempotency_key="kairos-checkout-bkg_sdk_1")
    assert session.object == "checkout.session", session.object
    assert session.id.startswith("cs_test_"), session.id
    assert (session.status, session.payment_status) == ("open", "unpaid"), (session.status, session.payment_status)
    assert (session.amount_total, session.currency) == (4500, "eur"), (session.amount_total, session.currency)
    assert session.metadata["booking_id"] == "bkg_sdk_1"
    assert session.client_reference_id == "bkg_sdk_1"
    assert session.customer_email == "ann@example.com"
    assert session.expires_at == params["expires_at"]
    assert session.livemode is False and session.mode == "payment"
    assert session.url == f"{base_url}/c/pay/{session.id}", session.url
    assert session.success_url == params["success_url"]
    assert session.last_response.request_id.startswith("req_")
    ok("create with Kairos's parameters")

    again = stripe.checkout.Session.create(**params, idempotency_key="kairos-checkout-bkg_sdk_1")
    assert again.id == session.id, (again.id, session.id)
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    ok("the same idempotency key and parameters replay the first answer")

    changed = kairos_params("bkg_sdk_1", amount=5000)
    changed["expires_at"] = params["expires_at"]
    e = expect(
        stripe.IdempotencyError,
        lambda: stripe.checkout.Session.create(**changed, idempotency_key="kairos-checkout-bkg_sdk_1"),
        "the same key with other parameters raises IdempotencyError",
    )
    assert e.http_status == 400, e.http_status

    fetched = stripe.checkout.Session.retrieve(session.id)
    assert (fetched.id, fetched.status) == (session.id, "open")
    ok("retrieve")

    client = stripe.StripeClient(secret_key, base_addresses={"api": base_url}, max_network_retries=0)
    via_client = client.v1.checkout.sessions.retrieve(session.id)
    assert via_client.metadata["booking_id"] == "bkg_sdk_1"
    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert len(items.data) == 1, items
    item = items.data[0]
    assert (item.description, item.quantity, item.amount_total, item.currency) == (
        "Consultation (60 min)",
        1,
        4500,
        "eur",
    ), item
    assert item.price.unit_amount == 4500 and item.price.type == "one_time"
    ok("StripeClient: retrieve and list line items")

    expired = stripe.checkout.Session.expire(session.id)
    assert (expired.status, expired.payment_status, expired.url) == ("expired", "unpaid", None)
    ok("expire")
    e = expect(
        stripe.InvalidRequestError,
        lambda: stripe.checkout.Session.expire(session.id),
        "expiring an expired session raises InvalidRequestError",
    )
    assert e.http_status == 400 and "status of `expired`" in e.user_message, e.user_message

    e = expect(
        stripe.InvalidRequestError,
        lambda: stripe.checkout.Session.retrieve("cs_test_nonexistent"),
        "an unknown session raises InvalidRequestError",
    )
    assert (e.http_status, e.code, e.param) == (404, "resource_missing", "session"), (e.http_status, e.code, e.param)
    assert e.user_message == "No such checkout.session: 'cs_test_nonexistent'", e.user_message

    missing = kairos_params("bkg_sdk_2")
    del missing["mode"]
    e = expect(stripe.InvalidRequestError, lambda: stripe.checkout.Session.create(**missing), "a missing mode")
    assert (e.http_status, e.param, e.code) == (400, "mode", "parameter_missing"), (e.http_status, e.param, e.code)

    soon = kairos_params("bkg_sdk_2")
    soon["expires_at"] = int(time.time()) + 600
    e = expect(stripe.InvalidRequestError, lambda: stripe.checkout.Session.create(**soon), "expires_at too soon")
    assert (e.http_status, e.param) == (400, "expires_at"), (e.http_status, e.param)
    late = kairos_params("bkg_sdk_2")
    late["expires_at"] = int(time.time()) + 25 * 3600
    e = expect(stripe.InvalidRequestError, lambda: stripe.checkout.Session.create(**late), "expires_at too late")
    assert e.param == "expires_at", e.param

    unknown = kairos_params("bkg_sdk_2")
    unknown["payment_intent_datum"] = {"x": "y"}
    e = expect(stripe.InvalidRequestError, lambda: stripe.checkout.Session.create(**unknown), "an unknown param")
    assert e.code == "parameter_unknown", e.code

    e = expect(
        stripe.AuthenticationError,
        lambda: stripe.checkout.Session.retrieve(fetched.id, api_key="sk_test_wrong_key_0000000000"),
        "a wrong key raises AuthenticationError",
    )
    assert e.http_status == 401, e.http_status

    to_pay = stripe.checkout.Session.create(**kairos_params("bkg_sdk_3"), idempotency_key="kairos-checkout-bkg_sdk_3")
    print(f"pay: {to_pay.id}", flush=True)
    print("stripe-python: api checks passed", flush=True)


def webhook(payload_file, signature, stale_signature, secret, session_id):
    with open(payload_file, "rb") as f:
        payload = f.read()

    event = stripe.Webhook.construct_event(payload, signature, secret)
    assert event.object == "event" and event.id.startswith("evt_"), event.id
    assert event.type == "checkout.session.completed", event.type
    assert event.livemode is False
    session = event.data.object
    assert session.object == "checkout.session"
    assert session.id == session_id, (session.id, session_id)
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.metadata["booking_id"] == "bkg_sdk_3"
    assert session.client_reference_id == "bkg_sdk_3"
    ok("construct_event accepts the emulator's signature and reads the session")

    tampered = payload.replace(b'"paid"', b'"unpaid"', 1)
    assert tampered != payload
    expect(
        stripe.SignatureVerificationError,
        lambda: stripe.Webhook.construct_event(tampered, signature, secret),
        "a tampered body raises SignatureVerificationError",
    )
    expect(
        stripe.SignatureVerificationError,
        lambda: stripe.Webhook.construct_event(payload, stale_signature, secret),
        "a stale timestamp raises SignatureVerificationError",
    )
    stripe.WebhookSignature.verify_header(payload, stale_signature, secret, tolerance=None)
    ok("the stale signature is otherwise genuine")
    expect(
        stripe.SignatureVerificationError,
        lambda: stripe.Webhook.construct_event(payload, signature, secret + "x"),
        "a wrong secret raises SignatureVerificationError",
    )
    print("stripe-python: webhook checks passed", flush=True)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "api" and len(sys.argv) == 4:
        api(sys.argv[2], sys.argv[3])
    elif command == "webhook" and len(sys.argv) == 7:
        webhook(*sys.argv[2:7])
    else:
        sys.exit(__doc__)
