"""Fidelity check: Microsoft's own Graph SDK for Python (PyPI `msgraph-sdk`) against the Kairos
Microsoft emulator. If the SDK reads every answer and the values are the ones the Rust test
seeded, the emulator speaks Graph's wire format closely enough for real clients.

Usage: msgraph_sdk_check.py BASE_URL

The Rust test (crates/kairos-emulators/tests/microsoft_sdk.rs) seeds the default calendar with
three single events (one of them, "Dentist", is deleted here) and a weekly series with three
occurrences in the window 2026-03-01..2026-03-31, and adds a calendar named "Team". Each check
prints `ok: …`; the first failure raises and exits non-zero.
"""

import asyncio
import base64
import datetime
import hashlib
import http.server
import secrets
import sys
import threading
import urllib.parse

import httpx
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.attendee_type import AttendeeType
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.event_type import EventType
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder

CLIENT_ID = "00000000-0000-0000-0000-00000000k410"
CLIENT_SECRET = "kairos~test~secret"
REDIRECT_URI = "http://127.0.0.1/callback"


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def tokens(base):
    """The authorization code flow with PKCE against the emulator's identity platform."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with httpx.Client(follow_redirects=False) as http:
        r = http.get(
            f"{base}/common/oauth2/v2.0/authorize",
            params={
                "client_id": CLIENT_ID,
                "response_type": "code",
                "redirect_uri": REDIRECT_URI,
                "scope": "offline_access Calendars.ReadWrite User.Read",
                "state": "s1",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        check(r.status_code == 302, "authorize redirects back with a code")
        query = urllib.parse.parse_qs(urllib.parse.urlparse(r.headers["location"]).query)
        check(query["state"] == ["s1"], "authorize echoes state")
        r = http.post(
            f"{base}/common/oauth2/v2.0/token",
            data={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
        )
        body = r.json()
        check(r.status_code == 200 and body["token_type"] == "Bearer" and "refresh_token" in body, "token endpoint")
        return body["access_token"]


class StaticToken(AccessTokenProvider):
    def __init__(self, token):
        self.token = token

    async def get_authorization_token(self, uri, additional_authentication_context={}):
        return self.token

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator(["127.0.0.1"])


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers Graph's validation handshake and records change notifications."""

    received = []

    def do_POST(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if "validationToken" in query:
            token = query["validationToken"][0].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(token)))
            self.end_headers()
            self.wfile.write(token)
            return
        Receiver.received.append(body)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def delta_config(start=None, end=None, page=2):
    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(start_date_time=start, end_date_time=end)
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("Prefer", f"odata.maxpagesize={page}")
    config.headers.add("Prefer", 'outlook.timezone="UTC"')
    return config


async def sync_round(client, first_link=None):
    """One delta round: pages up to the delta link. Returns (events, pages, delta link)."""
    delta = client.me.calendar_view.delta
    if first_link is None:
        response = await delta.get(delta_config("2026-03-01T00:00:00Z", "2026-03-31T00:00:00Z"))
    else:
        response = await delta.with_url(first_link).get(delta_config())
    events, pages = list(response.value), 1
    while response.odata_next_link:
        check("$skiptoken=" in response.odata_next_link and len(response.value) <= 2, "a page with a skip token")
        response = await delta.with_url(response.odata_next_link).get(delta_config())
        events.extend(response.value)
        pages += 1
    check(response.odata_delta_link and "$deltatoken=" in response.odata_delta_link, "the round ends with a delta link")
    return events, pages, response.odata_delta_link


async def main(base):
    auth = BaseBearerTokenAuthenticationProvider(StaticToken(tokens(base)))
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{base}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)

    calendars = (await client.me.calendars.get()).value
    names = sorted(c.name for c in calendars)
    check(names == ["Calendar", "Team"], f"me.calendars lists both calendars ({names})")
    default = next(c for c in calendars if c.is_default_calendar)
    check(default.owner.address == "alice@contoso.com" and default.can_edit, "the default calendar and its owner")

    events, pages, delta_link = await sync_round(client)
    subjects = sorted(e.subject for e in events)
    check(len(events) == 6 and pages == 3, f"the first round pages through all 6 instances ({subjects})")
    occurrences = [e for e in events if e.type == EventType.Occurrence]
    check(len(occurrences) == 3 and all(o.series_master_id for o in occurrences), "series occurrences")
    check(all(e.start.time_zone == "UTC" and e.start.date_time.endswith(".0000000") for e in events), "UTC times")
    dentist = next(e for e in events if e.subject == "Dentist")
    check(dentist.odata_type == "#microsoft.graph.event" and dentist.change_key, "event metadata")

    created = await client.me.events.post(
        Event(
            subject="Planning",
            body=ItemBody(content_type=BodyType.Text, content="Quarterly"),
            start=DateTimeTimeZone(date_time="2026-03-20T09:00:00", time_zone="Pacific Standard Time"),
            end=DateTimeTimeZone(date_time="2026-03-20T10:00:00", time_zone="Pacific Standard Time"),
            attendees=[
                Attendee(type=AttendeeType.Required, email_address=EmailAddress(address="bob@example.com", name="Bob"))
            ],
            transaction_id="sdk-check-1",
        )
    )
    check(created.id and created.original_start_time_zone == "Pacific Standard Time", "events.post creates")
    again = await client.me.events.post(
        Event(
            subject="Planning",
            start=DateTimeTimeZone(date_time="2026-03-20T09:00:00", time_zone="Pacific Standard Time"),
            end=DateTimeTimeZone(date_time="2026-03-20T10:00:00", time_zone="Pacific Standard Time"),
            transaction_id="sdk-check-1",
        )
    )
    check(again.id == created.id, "a repeated transactionId returns the first event")
    patched = await client.me.events.by_event_id(created.id).patch(Event(subject="Planning (moved)"))
    check(patched.subject == "Planning (moved)" and patched.change_key != created.change_key, "events patch")
    await client.me.events.by_event_id(dentist.id).delete()
    check(True, "events delete")

    changes, _, _ = await sync_round(client, delta_link)
    removed = [e for e in changes if "@removed" in (e.additional_data or {})]
    upserts = [e for e in changes if "@removed" not in (e.additional_data or {})]
    check([e.id for e in removed] == [dentist.id], "the second round reports the deletion as @removed")
    check([e.subject for e in upserts] == ["Planning (moved)"], "the second round reports the new event")
    check(upserts[0].start.date_time == "2026-03-20T16:00:00.0000000", "the new event's start in UTC")

    try:
        await client.me.events.by_event_id("AAMkADdoesnotexist=").get()
        check(False, "a missing event raises")
    except ODataError as e:
        check(e.response_status_code == 404 and e.error.code == "ErrorItemNotFound", "ODataError ErrorItemNotFound")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/graph/notifications"
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=4000)
    sub = await client.subscriptions.post(
        Subscription(
            change_type="created,updated,deleted",
            notification_url=hook,
            lifecycle_notification_url=hook,
            resource=f"me/calendars/{default.id}/events",
            expiration_date_time=expires,
            client_state="sdk-secret",
        )
    )
    check(sub.id and sub.client_state == "sdk-secret", "subscriptions.post after the validation handshake")
    await client.me.events.post(
        Event(
            subject="Notify me",
            start=DateTimeTimeZone(date_time="2026-03-22T09:00:00", time_zone="UTC"),
            end=DateTimeTimeZone(date_time="2026-03-22T10:00:00", time_zone="UTC"),
        )
    )
    for _ in range(100):
        if Receiver.received:
            break
        await asyncio.sleep(0.1)
    check(b'"clientState":"sdk-secret"' in b"".join(Receiver.received), "a change notification arrives")
    renewed = await client.subscriptions.by_subscription_id(sub.id).patch(
        Subscription(expiration_date_time=expires + datetime.timedelta(minutes=100))
    )
    check(renewed.expiration_date_time > sub.expiration_date_time, "subscriptions patch renews")
    await client.subscriptions.by_subscription_id(sub.id).delete()
    check(True, "subscriptions delete")
    try:
        await client.subscriptions.post(
            Subscription(
                change_type="created",
                notification_url="http://127.0.0.1:9/nobody-listens",
                resource="me/events",
                expiration_date_time=expires,
            )
        )
        check(False, "an unreachable notification URL is refused")
    except ODataError as e:
        check(e.response_status_code == 400 and e.error.code == "InvalidRequest", "failed validation is a 400")
    server.shutdown()
    print("msgraph-sdk: all checks passed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1].rstrip("/")))
