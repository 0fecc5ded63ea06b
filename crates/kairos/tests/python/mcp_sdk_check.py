"""Kairos's MCP server seen by the official Python SDK (PyPI `mcp`): over streamable HTTP in the
SDK's default mode (the newest protocol, `server/discover`) and in its legacy handshake mode,
and over stdio by launching `kairos mcp`. Prints one JSON object with what it saw; the Rust
test (tests/it/mcp.rs) checks it against the REST API.

Usage: mcp_sdk_check.py BASE_URL API_KEY BUSINESS_ID KAIROS_BINARY
"""

import asyncio
import json
import sys

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def result_json(result):
    text = result.content[0].text if result.content else None
    return {"is_error": bool(result.is_error), "text": text, "structured": result.structured_content}


async def main(base, key, business, binary):
    out = {}
    # The SDK's default: probe `server/discover`, use the newest protocol the server offers.
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        transport = streamable_http_client(f"{base}/v1/mcp", http_client=http)
        async with Client(transport) as client:
            out["http_protocol"] = client.session.protocol_version
            tools = await client.list_tools()
            out["http_tools"] = sorted(t.name for t in tools.tools)
            out["http_schema_types"] = sorted({t.input_schema.get("type") for t in tools.tools})
            slots = await client.call_tool(
                "find_slots",
                {"business_id": business, "from": "2030-01-02T09:00:00Z", "to": "2030-01-02T12:00:00Z"},
            )
            out["slots"] = result_json(slots)
            slot = slots.structured_content["slots"][0]
            booking = {
                "business_id": business,
                "customer_email": "py@example.com",
                "customer_name": "Py Thon",
                "start_time": slot["start"],
                "end_time": slot["end"],
            }
            out["booked"] = result_json(await client.call_tool("create_booking", booking))
            out["booked_again"] = result_json(await client.call_tool("create_booking", booking))

    # The pre-2026 handshake (initialize / initialized), as older clients speak it.
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        transport = streamable_http_client(f"{base}/v1/mcp", http_client=http)
        async with Client(transport, mode="legacy") as client:
            out["legacy_protocol"] = client.session.protocol_version
            out["legacy_tools"] = sorted(t.name for t in (await client.list_tools()).tools)
            out["legacy_list"] = result_json(await client.call_tool("list_bookings", {"business_id": business}))

    # stdio: the SDK launches `kairos mcp` itself, as a desktop agent would.
    params = StdioServerParameters(command=binary, args=["mcp"], env={"KAIROS_URL": base, "KAIROS_API_KEY": key})
    async with Client(params) as client:
        out["stdio_tools"] = sorted(t.name for t in (await client.list_tools()).tools)
        booking_id = out["booked"]["structured"]["id"]
        out["cancelled"] = result_json(
            await client.call_tool("cancel_booking", {"booking_id": booking_id, "reason": "python says no"})
        )

    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
