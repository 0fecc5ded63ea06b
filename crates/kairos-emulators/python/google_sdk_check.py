"""Google's own Python SDK (google-api-python-client + google-auth) against the Kairos
Google emulator: if the SDK reads the emulator's answers, the emulator speaks Google's wire
format closely enough to test Kairos against.

Usage: google_sdk_check.py BASE_URL REFRESH_TOKEN CLIENT_ID CLIENT_SECRET WEBHOOK_URL

Prints one `ok: ...` line per check and `ALL OK` at the end; any failure raises (exit 1).
"""

import sys

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

BASE, REFRESH, CLIENT_ID, CLIENT_SECRET, WEBHOOK = sys.argv[1:6]
SCOPES = ["https://www.googleapis.com/auth/calendar"]


def ok(what):
    print("ok:", what, flush=True)


def expect_http_error(call, status, reason):
    try:
        call.execute()
    except HttpError as e:
        assert e.resp.status == status, (e.resp.status, e.content)
        reasons = [d.get("reason") for d in (e.error_details or []) if isinstance(d, dict)]
        assert reason in reasons, (reasons, e.content)
        return e
    raise AssertionError(f"expected HTTP {status} {reason}")


def main():
    creds = Credentials(
        token=None,
        refresh_token=REFRESH,
        token_uri=BASE + "/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes=SCOPES,
    )
    # The discovery document ships with the package (static_discovery); api_endpoint
    # replaces rootUrl + servicePath, so every request goes to the emulator.
    service = build(
        "calendar",
        "v3",
        credentials=creds,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": BASE + "/calendar/v3/"},
    )

    calendars = service.calendarList().list().execute()
    assert creds.token and creds.token.startswith("ya29."), creds.token
    ok("credentials refreshed through the emulator's /token")
    assert calendars["kind"] == "calendar#calendarList", calendars
    primary = [c for c in calendars["items"] if c.get("primary")]
    assert len(primary) == 1 and primary[0]["accessRole"] == "owner", calendars
    calendar_id = primary[0]["id"]
    ok(f"calendarList: primary calendar {calendar_id}")

    event = {
        "id": "kairossdk0001",
        "summary": "SDK check",
        "start": {"dateTime": "2030-01-07T09:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2030-01-07T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "attendees": [{"email": "bob@example.com", "responseStatus": "needsAction"}],
    }
    created = service.events().insert(calendarId="primary", body=event).execute()
    assert created["id"] == "kairossdk0001" and created["kind"] == "calendar#event", created
    assert created["etag"].startswith('"') and created["status"] == "confirmed", created
    expect_http_error(service.events().insert(calendarId="primary", body=event), 409, "duplicate")
    ok("events.insert with a client id; a second insert is 409 duplicate")

    got = service.events().get(calendarId=calendar_id, eventId="kairossdk0001").execute()
    assert got["summary"] == "SDK check" and got["iCalUID"], got
    patched = service.events().patch(
        calendarId="primary", eventId="kairossdk0001", body={"summary": "SDK check (renamed)"}
    ).execute()
    assert patched["summary"] == "SDK check (renamed)" and patched["etag"] != got["etag"], patched
    assert patched["attendees"][0]["email"] == "bob@example.com", patched
    ok("events.get and events.patch (etag changes)")
    expect_http_error(service.events().get(calendarId="primary", eventId="nosuchevent1"), 404, "notFound")
    ok("events.get of an unknown id is 404 notFound")

    for i in range(4):
        service.events().insert(
            calendarId="primary",
            body={
                "summary": f"Page filler {i}",
                "start": {"dateTime": f"2030-01-0{i + 1}T12:00:00Z"},
                "end": {"dateTime": f"2030-01-0{i + 1}T13:00:00Z"},
            },
        ).execute()
    request = service.events().list(calendarId="primary", maxResults=2)
    pages, ids, sync_token = 0, [], None
    while request is not None:
        response = request.execute()
        pages += 1
        assert len(response["items"]) <= 2, response
        ids += [e["id"] for e in response["items"]]
        if "nextPageToken" in response:
            assert "nextSyncToken" not in response, response
        else:
            sync_token = response["nextSyncToken"]
        request = service.events().list_next(request, response)
    assert pages == 3 and len(ids) == 5 and len(set(ids)) == 5, (pages, ids)
    assert sync_token, "the last page carries nextSyncToken"
    ok(f"events.list paged by 2: {pages} pages, {len(ids)} events, nextSyncToken on the last")

    service.events().delete(calendarId="primary", eventId="kairossdk0001").execute()
    expect_http_error(service.events().delete(calendarId="primary", eventId="kairossdk0001"), 410, "deleted")
    changes = service.events().list(calendarId="primary", syncToken=sync_token).execute()
    by_id = {e["id"]: e for e in changes["items"]}
    assert by_id.get("kairossdk0001", {}).get("status") == "cancelled", changes
    assert "nextSyncToken" in changes and changes["nextSyncToken"] != sync_token, changes
    ok("events.delete; a second delete is 410 deleted; the sync token returns the deletion")

    expect_http_error(service.events().list(calendarId="primary", syncToken="CPjexpired="), 410, "fullSyncRequired")
    ok("an unknown sync token is HttpError 410 fullSyncRequired")

    busy = service.freebusy().query(
        body={
            "timeMin": "2030-01-01T00:00:00Z",
            "timeMax": "2030-01-03T00:00:00Z",
            "items": [{"id": calendar_id}, {"id": "nobody@example.com"}],
        }
    ).execute()
    assert busy["kind"] == "calendar#freeBusy", busy
    periods = busy["calendars"][calendar_id]["busy"]
    assert periods == [
        {"start": "2030-01-01T12:00:00Z", "end": "2030-01-01T13:00:00Z"},
        {"start": "2030-01-02T12:00:00Z", "end": "2030-01-02T13:00:00Z"},
    ], periods
    assert busy["calendars"]["nobody@example.com"]["errors"][0]["reason"] == "notFound", busy
    ok("freebusy.query")

    channel = service.events().watch(
        calendarId="primary",
        body={"id": "sdk-channel-1", "type": "web_hook", "address": WEBHOOK, "token": "sdk-token"},
    ).execute()
    assert channel["kind"] == "api#channel" and channel["id"] == "sdk-channel-1", channel
    assert channel["resourceId"] and int(channel["expiration"]) > 0, channel
    service.channels().stop(body={"id": channel["id"], "resourceId": channel["resourceId"]}).execute()
    expect_http_error(
        service.channels().stop(body={"id": channel["id"], "resourceId": channel["resourceId"]}), 404, "notFound"
    )
    ok("events.watch and channels.stop")
    print("ALL OK", flush=True)


if __name__ == "__main__":
    main()
