"""The consultants' workspace pages: the queue, the ticket, claim and reply by form, errors that keep
what was typed, everything the person wrote shown escaped, and other points' tickets refused."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import DESK_PASSWORD, sign_in

pytestmark = pytest.mark.usefixtures("synced_kb", "desk_staff")

# Tags a person types are cleaned away by the bot; an unclosed one and quotes still reach the desk.
XSS = '"quoted" & <img src=x onerror=alert(1)'
NOTE_XSS = '<script>alert("note")</script>'


async def person_with_ticket(client: httpx.AsyncClient, description: str, office: str = "TARNOW") -> str:
    async def ask(**payload: object) -> dict[str, object]:
        response = await client.post("/api/v1/ask", json=payload)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    start = await ask(text="", action="consultant", language="pl")
    await ask(session_id=start["session_id"], action="choose_office", value=office)
    await ask(session_id=start["session_id"], text=description)
    done = await ask(session_id=start["session_id"], action="consent", value="yes")
    return str(done["ticket"]["number"])  # type: ignore[index]


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def signed_in(app_client: httpx.AsyncClient, username: str) -> httpx.AsyncClient:
    response = await sign_in(app_client, username, DESK_PASSWORD)
    assert response.status_code == 303, response.text
    return app_client


async def ticket_url(client: httpx.AsyncClient, number: str) -> str:
    queue = await client.get("/staff/tickets")
    assert queue.status_code == 200
    found = re.search(rf'<a href="(/staff/tickets/\d+)">{re.escape(number)}</a>', queue.text)
    assert found is not None, f"{number} not in the queue"
    return found.group(1)


async def test_the_queue_shows_the_ticket_and_what_the_person_wrote_escaped(
    client: httpx.AsyncClient,
) -> None:
    number = await person_with_ticket(client, f"Pytanie o kartę pobytu {XSS}")
    await signed_in(client, "tomasz.tarnow")
    queue = await client.get("/staff/tickets")
    assert number in queue.text
    assert "<img src=x" not in queue.text and "&lt;img src=x onerror=alert(1)" in queue.text
    url = await ticket_url(client, number)
    page = await client.get(url)
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "&#34;quoted&#34; &amp; &lt;img src=x" in page.text
    await client.post(f"{url}/note", data={"csrf_token": csrf(page.text), "text": NOTE_XSS})
    page = await client.get(url)
    assert NOTE_XSS not in page.text and "&lt;script&gt;alert(&#34;note&#34;)&lt;/script&gt;" in page.text


async def test_claim_and_reply_by_form_and_an_empty_reply_keeps_the_page(client: httpx.AsyncClient) -> None:
    number = await person_with_ticket(client, "Czy mogę zmienić pracodawcę na zezwoleniu typu A?")
    await signed_in(client, "tomasz.tarnow")
    url = await ticket_url(client, number)
    page = await client.get(url)
    assert 'id="send-reply" disabled' in page.text, "no reply before claiming"
    token = csrf(page.text)

    claimed = await client.post(f"{url}/claim", data={"csrf_token": token})
    assert claimed.status_code == 303
    page = await client.get(url)
    assert 'id="send-reply" disabled' not in page.text
    assert "tomasz.tarnow" in page.text

    empty = await client.post(f"{url}/reply", data={"csrf_token": token, "text": "   "})
    assert empty.status_code == 422 and 'role="alert"' in empty.text and "empty" in empty.text
    long_text = "Szanowna Pani, " + "x" * 4100
    too_long = await client.post(f"{url}/reply", data={"csrf_token": token, "text": long_text})
    assert too_long.status_code == 422
    assert long_text in too_long.text, "what the consultant typed comes back in the box"

    sent = await client.post(f"{url}/reply", data={"csrf_token": token, "text": "Tak, należy to zgłosić."})
    assert sent.status_code == 303 and "?sent=" in sent.headers["location"]
    thread = await client.get(f"{url}/thread")
    assert "Tak, należy to zgłosić." in thread.text and 'data-delivery="pending"' in thread.text


async def test_a_form_without_the_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    number = await person_with_ticket(client, "Ile kosztuje karta pobytu czasowego?")
    await signed_in(client, "tomasz.tarnow")
    url = await ticket_url(client, number)
    refused = await client.post(f"{url}/claim", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    refused = await client.post("/staff/tickets/next", data={})
    assert refused.status_code == 403


async def test_another_consultant_sees_who_holds_it_and_cannot_claim(client: httpx.AsyncClient) -> None:
    number = await person_with_ticket(client, "Jak długo czeka się na decyzję w Tarnowie?")
    await signed_in(client, "tomasz.tarnow")
    url = await ticket_url(client, number)
    await client.post(f"{url}/claim", data={"csrf_token": csrf((await client.get(url)).text)})
    client.cookies.clear()
    await signed_in(client, "ola.tarnow")
    page = await client.get(url)
    refused = await client.post(f"{url}/claim", data={"csrf_token": csrf(page.text)})
    assert refused.status_code == 409 and "tomasz.tarnow" in refused.text


async def test_another_points_consultant_is_refused_the_ticket(client: httpx.AsyncClient) -> None:
    number = await person_with_ticket(client, "Pytanie do Tarnowa o odciski palców")
    await signed_in(client, "tomasz.tarnow")
    url = await ticket_url(client, number)
    client.cookies.clear()
    await signed_in(client, "rafal.rondo")
    assert number not in (await client.get("/staff/tickets")).text
    page = await client.get(url)
    assert page.status_code == 403 and "another information point" in page.text


async def test_take_next_opens_a_ticket_and_says_when_the_queue_is_empty(client: httpx.AsyncClient) -> None:
    await person_with_ticket(client, "Kiedy dostanę kartę pobytu po odciskach?")
    await signed_in(client, "tomasz.tarnow")
    token = csrf((await client.get("/staff/tickets")).text)
    taken = await client.post("/staff/tickets/next", data={"csrf_token": token})
    assert taken.status_code == 303 and re.fullmatch(r"/staff/tickets/\d+", taken.headers["location"])
    for _ in range(50):  # take whatever else is waiting until the queue is empty
        taken = await client.post("/staff/tickets/next", data={"csrf_token": token})
        if taken.headers["location"].endswith("empty=1"):
            break
    empty = await client.get(taken.headers["location"])
    assert "No unclaimed ticket is waiting" in empty.text


async def test_suggested_answers_are_in_the_persons_language(client: httpx.AsyncClient) -> None:
    number = await person_with_ticket(client, "Ile kosztuje karta pobytu i na jakie konto zapłacić opłatę?")
    await signed_in(client, "tomasz.tarnow")
    page = await client.get(await ticket_url(client, number))
    assert 'class="card suggestion" data-topic="fees" lang="pl"' in page.text
    assert "Insert short answer" in page.text


def staff_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every page route under /staff and /admin, with its method (routers included however deep)."""

    def walk(routes: list[Any]) -> Any:
        for route in routes:
            if type(route).__name__ == "_IncludedRouter":
                yield from walk(route.original_router.routes)
            elif hasattr(route, "methods") and route.path.startswith(("/staff", "/admin")):
                for method in route.methods or ():
                    yield method, route.path

    return sorted(set(walk(app.routes)))


async def test_every_staff_page_refuses_anonymous_callers(client: httpx.AsyncClient, app: FastAPI) -> None:
    routes = [(method, path) for method, path in staff_routes(app) if path != "/staff/language"]
    assert len(routes) >= 30
    for method, template in routes:
        path = re.sub(r"\{[a-z_]+(:int)?\}", lambda m: "1" if m.group(1) else "x", template)
        response = await client.request(method, path, data={"csrf_token": "x"} if method == "POST" else None)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), (
            method,
            path,
        )
