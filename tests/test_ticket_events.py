"""The live queue's event stream across app workers: a ticket opened through one app instance reaches a
consultant's stream served by another, through Redis pub/sub; other points' tickets do not."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.conftest import bearer
from tests.test_tickets_api import person_with_ticket

pytestmark = pytest.mark.usefixtures("synced_kb", "desk_staff")


async def next_ticket_event(stream: httpx.Response) -> dict[str, object]:
    event = None
    async for line in stream.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "ticket":
            data: dict[str, object] = json.loads(line.removeprefix("data: "))
            return data
    raise AssertionError("the stream ended")


async def test_a_new_ticket_reaches_another_workers_stream(
    client: httpx.AsyncClient, live_server: str
) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=20) as other_worker:
        tarnow = await bearer(other_worker, "tomasz.tarnow")
        rondo = await bearer(other_worker, "rafal.rondo")
        async with (
            other_worker.stream("GET", "/api/v1/tickets/events", headers=tarnow) as stream,
            other_worker.stream("GET", "/api/v1/tickets/events", headers=rondo) as rondo_stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            await asyncio.sleep(0.3)  # both subscribed
            _session_id, number = await person_with_ticket(client, office="TARNOW")
            change = await asyncio.wait_for(next_ticket_event(stream), 10)
            assert change["number"] == number and change["kind"] == "created" and change["office"] == "TARNOW"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(next_ticket_event(rondo_stream), 1.5)


async def test_the_stream_refuses_anonymous_callers(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server) as anonymous:
        response = await anonymous.get("/api/v1/tickets/events")
    assert response.status_code == 401
