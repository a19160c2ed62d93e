"""Every route the app serves, walked from its own route table: anonymous callers are refused every staff
route, a consultant never reaches another point's ticket or an admin's page, every form a signed-in
browser can send needs its CSRF token, and every public route is limited per address, guarded by a
secret, or does no database or Redis work at all.

Nothing here is a hand-written list of staff routes that goes stale: a new route is a staff route
(and must refuse strangers) unless it is added to PUBLIC below, with the reason it may be public.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from twilio.request_validator import RequestValidator

from infoopt.app import create_app
from infoopt.core.settings import Settings, TelegramSettings, TwilioSettings
from infoopt.staff import throttle
from infoopt.staff.accounts import Role
from knowledge_base import service as kb
from tests.conftest import DESK_PASSWORD, bearer, rolled_back, sign_in
from tests.test_desk_pages import csrf, person_with_ticket

pytestmark = pytest.mark.usefixtures("synced_kb", "desk_staff", "staff_accounts")

LIMITED = "limited per client address: a 429 with Retry-After"
SECRET = "refuses every caller without its secret"
NO_IO = "answers without touching the database or Redis: nothing to flood"

# Every route a stranger may call, and why. Anything else in the route table is a staff route.
PUBLIC: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/ask"): LIMITED,
    ("POST", "/api/v1/feedback"): LIMITED,
    ("GET", "/api/v1/conversations/{session_id}/messages"): LIMITED,  # and the session id is a secret
    ("GET", "/api/v1/kb/articles/{topic_id}"): LIMITED,
    ("GET", "/readyz"): LIMITED,
    ("POST", "/login"): LIMITED,  # failed sign-ins, per address and username
    ("POST", "/api/v1/auth/login"): LIMITED,
    ("POST", "/telegram/webhook"): SECRET,
    ("POST", "/twilio/voice"): SECRET,
    ("POST", "/twilio/voice/language"): SECRET,
    ("POST", "/twilio/voice/turn"): SECRET,
    ("POST", "/twilio/voice/dial"): SECRET,
    ("POST", "/twilio/voice/status"): SECRET,
    ("POST", "/api/v1/cases/import"): SECRET,
    ("GET", "/metrics"): SECRET,  # with INFOOPT_METRICS_TOKEN set, and always in production
    ("GET", "/chat"): NO_IO,
    ("GET", "/deklaracja-dostepnosci"): NO_IO,  # the accessibility statement, in Polish
    ("GET", "/accessibility"): NO_IO,  # ...and in English
    ("GET", "/login"): NO_IO,
    ("GET", "/staff/language"): NO_IO,
    ("GET", "/healthz"): NO_IO,
    ("GET", "/docs"): NO_IO,
    ("GET", "/openapi.json"): NO_IO,
    ("GET", "/static"): NO_IO,
    ("GET", "/docs-assets"): NO_IO,
}

# State-changing routes that take no CSRF token, and why none is needed.
CSRF_EXEMPT: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/ask"): "public: no cookie, the conversation's id travels in the body",
    ("POST", "/api/v1/feedback"): "public: no cookie, the conversation's id travels in the body",
    ("POST", "/api/v1/auth/login"): "JSON credentials in, a bearer token out: no cookie is used or set",
    ("POST", "/login"): "the sign-in form checks its own token against its own cookie (proven below)",
    ("POST", "/telegram/webhook"): "Telegram's secret header",
    ("POST", "/twilio/voice"): "Twilio's signature",
    ("POST", "/twilio/voice/language"): "Twilio's signature",
    ("POST", "/twilio/voice/turn"): "Twilio's signature",
    ("POST", "/twilio/voice/dial"): "Twilio's signature",
    ("POST", "/twilio/voice/status"): "Twilio's signature",
    ("POST", "/api/v1/cases/import"): "the case system's bearer token",
}

# The staff event stream answers an admitted caller with a stream that never ends; who sees which
# changes on it is proven in test_ticket_events.py.
STREAMS = {("GET", "/api/v1/tickets/events")}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
EVERY_ROLE = frozenset(Role)

MARKER = "Tajne pytanie 7c1e9b o kartę pobytu w Tarnowie"  # what the person wrote: nobody else may read it
REPLY = "Odpowiedź z Tarnowa w sprawie karty"
API_BODIES: dict[str, dict[str, str]] = {
    "reply": {"text": "Dzień dobry, sprawdzam."},
    "note": {"text": "Notatka wewnętrzna"},
    "transfer": {"office": "KRK-RONDO", "reason": "Właściwy punkt"},
}
FORM_FIELDS = {"text": "Dzień dobry", "office": "KRK-RONDO", "reason": "powód", "note": "notatka"}


def route_table(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, read from its route table (routers included however deep);
    a mounted directory of files counts as ("GET", its prefix)."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        for method in (route.methods or {"GET"}) - {"HEAD"}:
            assert route.path is not None
            found.add((method, route.path))
    return sorted(found)


def staff_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [route for route in route_table(app) if route not in PUBLIC]


def admitted_roles(path: str) -> frozenset[Role]:
    """The access policy, written out: the editor and the office and account pages are for admins, the
    dashboard for supervisors and admins; the desk, the staff API and knowledge search for every role."""
    if path in ("/admin/kb-search", "/api/v1/kb/search"):
        return EVERY_ROLE
    if path.startswith("/admin"):
        return frozenset({Role.ADMIN})
    if path.startswith("/staff/dashboard"):
        return frozenset({Role.SUPERVISOR, Role.ADMIN})
    return EVERY_ROLE


_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


def filled(path: str, ids: dict[str, str]) -> str:
    """The path with each parameter replaced by a real value of this test's data."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in ids:
            pytest.fail(f"{path}: no real value for {{{name}}}; add one to the `world` fixture")
        return quote(ids[name], safe="")

    return _PARAMETER.sub(value, path)


@dataclass
class World:
    """A person's ticket at Tarnów, held by tomasz.tarnow and answered once, and real ids around it."""

    ids: dict[str, str]
    number: str


@pytest.fixture
async def world(client: httpx.AsyncClient, app: FastAPI) -> World:
    """The ticket, claimed and answered through the API, and the ids every route's path needs."""
    number = await person_with_ticket(client, MARKER)
    tarnow = await bearer(client, "tomasz.tarnow")
    queue = (await client.get("/api/v1/tickets", headers=tarnow)).json()["items"]
    ticket_id = next(ticket["id"] for ticket in queue if ticket["number"] == number)
    claimed = await client.post(f"/api/v1/tickets/{ticket_id}/claim", headers=tarnow)
    assert claimed.status_code == 200, claimed.text
    reply = await client.post(f"/api/v1/tickets/{ticket_id}/reply", json={"text": REPLY}, headers=tarnow)
    assert reply.status_code == 200, reply.text
    session_id = (await client.post("/api/v1/ask", json={"text": "ile kosztuje karta"})).json()["session_id"]
    async with app.state.services.sessions() as session:
        revisions = await kb.revisions_of(session, "fees", "pl")
    return World(
        ids={
            "ticket_id": str(ticket_id),
            "message_id": str(reply.json()["id"]),
            "revision_id": str(revisions[0].id),
            "operation": "archive",
            "topic_id": "fees",
            "language": "pl",
            "code": "TARNOW",
            "username": "ola.tarnow",
            "session_id": session_id,
        },
        number=number,
    )


def _transport(app: FastAPI, address: str = "127.0.0.1") -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app, client=(address, 40000))


@dataclass
class Browser:
    """A client with its own cookies, and the CSRF token of its session when signed in."""

    http: httpx.AsyncClient
    token: str | None = None


@asynccontextmanager
async def browser(
    app: FastAPI, username: str | None, password: str = DESK_PASSWORD
) -> AsyncIterator[Browser]:
    """Anonymous, or signed in through the real form; the token is read from a page as a browser would."""
    async with httpx.AsyncClient(transport=_transport(app), base_url="http://testserver") as http:
        if username is None:
            yield Browser(http)
            return
        signed = await sign_in(http, username, password)
        assert signed.status_code == 303, signed.text
        yield Browser(http, csrf((await http.get("/staff/tickets")).text))


async def call(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    token: str | None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request as a browser page or an API client would send it: a form with `csrf_token` (pages),
    JSON with an X-CSRF-Token header (the API), each with a valid body so only access is in question."""
    headers = dict(headers or {})
    if method not in STATE_CHANGING:
        return await http.request(method, path, headers=headers)
    if path.startswith("/api/"):
        if token is not None:
            headers["X-CSRF-Token"] = token
        body = API_BODIES.get(path.rsplit("/", 1)[-1])
        return await http.request(method, path, json=body, headers=headers)
    form = dict(FORM_FIELDS) if token is None else {**FORM_FIELDS, "csrf_token": token}
    return await http.request(method, path, data=form, headers=headers)


def refused_for_role(response: httpx.Response) -> bool:
    if response.status_code != 403:
        return False
    if response.headers["content-type"].startswith("application/json"):
        return bool(response.json()["error"] == "forbidden")
    return "This page is for another role" in response.text


def refused_for_csrf(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.json().get("error") == "csrf_rejected"


# --- the route table --------------------------------------------------------------------------------


def test_the_public_list_names_only_routes_that_exist(app: FastAPI) -> None:
    table = set(route_table(app))
    assert set(PUBLIC) - table == set(), "a public route was removed or renamed: update PUBLIC"
    assert set(CSRF_EXEMPT) - table == set(), "an exempt route was removed or renamed: update CSRF_EXEMPT"
    assert set(CSRF_EXEMPT) <= set(PUBLIC), "only public routes may go without a CSRF token"
    assert len(staff_routes(app)) >= 45


# --- access control ---------------------------------------------------------------------------------


async def test_every_staff_route_refuses_anonymous_callers(app: FastAPI, world: World) -> None:
    routes = staff_routes(app)
    async with browser(app, None) as anonymous:
        for method, template in routes:
            path = filled(template, world.ids)
            response = await call(anonymous.http, method, path, token=None)
            if path.startswith("/api/"):
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.json()["error"] == "not_signed_in"
            else:
                assert response.status_code == 303, (method, path, response.status_code)
                assert response.headers["location"].startswith("/login?next=/"), (method, path)
            assert MARKER not in response.text and world.number not in response.text, (method, path)


async def test_a_consultant_of_another_point_reaches_nothing_of_the_ticket(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    ticket_routes = [route for route in staff_routes(app) if "{ticket_id" in route[1]]
    assert len(ticket_routes) >= 18, ticket_routes
    tarnow = await bearer(client, "tomasz.tarnow")
    before = (await client.get(f"/api/v1/tickets/{world.ids['ticket_id']}", headers=tarnow)).json()
    rondo_api = await bearer(client, "rafal.rondo")
    async with browser(app, "rafal.rondo") as rondo:
        for method, template in ticket_routes:
            path = filled(template, world.ids)
            if path.startswith("/api/"):
                response = await call(client, method, path, token=None, headers=rondo_api)
            else:
                response = await call(rondo.http, method, path, token=rondo.token)
            assert response.status_code in (403, 404), (method, path, response.status_code)
            assert MARKER not in response.text and REPLY not in response.text, (method, path)
        for listing in ("/staff/tickets?office=TARNOW", "/staff/tickets/rows?office=TARNOW&status=open"):
            page = await rondo.http.get(listing)
            assert page.status_code == 200 and world.number not in page.text and MARKER not in page.text
    everything = "&".join(f"status={status}" for status in ("new", "open", "waiting", "resolved", "closed"))
    listed = (await client.get(f"/api/v1/tickets?{everything}", headers=rondo_api)).json()["items"]
    assert all(ticket["office"] != "TARNOW" for ticket in listed)
    after = (await client.get(f"/api/v1/tickets/{world.ids['ticket_id']}", headers=tarnow)).json()
    facts = ("assignee", "office", "status", "updated_at")
    assert [after[fact] for fact in facts] == [before[fact] for fact in facts]
    assert after["assignee"] == "tomasz.tarnow" and after["office"] == "TARNOW"
    assert len(after["messages"]) == len(before["messages"]), "no reply or note got in"


@pytest.mark.parametrize(
    ("username", "password", "role"),
    [
        ("tomasz.tarnow", DESK_PASSWORD, Role.CONSULTANT),
        ("sylwia.supervisor", DESK_PASSWORD, Role.SUPERVISOR),
        ("anna.admin", "Admin-password-2026", Role.ADMIN),
    ],
)
async def test_each_role_reaches_exactly_the_routes_of_its_role(
    app: FastAPI, world: World, username: str, password: str, role: Role
) -> None:
    refused, admitted = [], []
    async with browser(app, username, password) as staff:
        for method, template in staff_routes(app):
            if (method, template) in STREAMS or template == "/logout":
                continue
            path = filled(template, world.ids)
            # Without the CSRF token: an admitted caller is stopped by it, so nothing changes here.
            response = await call(staff.http, method, path, token=None)
            assert response.status_code != 401 and response.status_code < 500, (method, path, response.text)
            if role in admitted_roles(template):
                assert not refused_for_role(response), (method, path, "should admit", role)
                admitted.append(path)
            else:
                assert refused_for_role(response), (method, path, response.status_code, "should refuse", role)
                refused.append(path)
    assert len(admitted) >= 25, admitted
    if role is Role.CONSULTANT:
        assert len(refused) >= 19 and any(p.startswith("/admin/users") for p in refused)
    if role is Role.ADMIN:
        assert refused == []


# --- CSRF ------------------------------------------------------------------------------------------


async def test_every_state_changing_route_of_a_signed_in_browser_needs_the_csrf_token(
    app: FastAPI, world: World
) -> None:
    changing = [
        (method, path)
        for method, path in route_table(app)
        if method in STATE_CHANGING and (method, path) not in CSRF_EXEMPT
    ]
    assert len(changing) >= 23, changing
    # Signing out ends the session the rest needs: it goes last.
    changing.sort(key=lambda route: route[1] == "/logout")
    async with browser(app, "anna.admin", "Admin-password-2026") as admin:
        for method, template in changing:
            path = filled(template, world.ids)
            assert (method, template) not in PUBLIC, f"{template} is public yet changes state: exempt it"
            missing = await call(admin.http, method, path, token=None)
            assert refused_for_csrf(missing), (method, path, missing.status_code, missing.text[:200])
            forged = await call(admin.http, method, path, token="forged-token-" + "x" * 20)
            assert refused_for_csrf(forged), (method, path, forged.status_code)
            right = await call(admin.http, method, path, token=admin.token)
            assert not refused_for_csrf(right) and right.status_code < 500, (method, path, right.text[:300])


async def test_the_sign_in_form_needs_its_own_token(app: FastAPI) -> None:
    async with browser(app, None) as stranger:
        form = {"username": "anna.admin", "password": "Admin-password-2026", "csrf_token": "made-up"}
        refused = await stranger.http.post("/login", data=form)
        assert refused.status_code == 403 and "infoopt_session" not in refused.cookies
        token = csrf((await stranger.http.get("/login")).text)
        accepted = await stranger.http.post("/login", data={**form, "csrf_token": token})
        assert accepted.status_code == 303 and "infoopt_session" in accepted.cookies


async def test_a_bearer_header_does_not_lift_the_csrf_check_of_a_cookie_session(
    app: FastAPI, world: World
) -> None:
    """A made-up `Authorization: Bearer` beside a stolen cookie is no way around the form token."""
    async with browser(app, "tomasz.tarnow") as tarnow:
        path = f"/staff/tickets/{world.ids['ticket_id']}/note"
        response = await tarnow.http.post(
            path, data={"text": "x"}, headers={"Authorization": "Bearer not-a-session-token"}
        )
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


# --- public routes: limited, secret or without I/O ---------------------------------------------------


def _fresh_address() -> str:
    return f"2001:db8:5ec::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


@pytest.fixture
async def strict_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """Small limits, to reach them in a few requests."""
    strict = settings.model_copy(
        update={
            "ask_limit_per_minute": 3,
            "ask_limit_per_address_per_minute": 3,
            "feedback_limit_per_minute": 3,
            "read_limit_per_address_per_minute": 3,
        }
    )
    application = create_app(strict)
    async with application.router.lifespan_context(application):
        yield application


def _limited_requests(session_id: str) -> dict[tuple[str, str], Callable[[httpx.AsyncClient], Any]]:
    """One ordinary request to each limited route (failed sign-ins for the sign-in routes)."""
    stranger = f"nobody.{uuid.uuid4().hex[:8]}"  # failures per username count across addresses too

    async def form_sign_in(http: httpx.AsyncClient) -> httpx.Response:
        token = csrf((await http.get("/login")).text)
        return await http.post(
            "/login", data={"username": stranger, "password": "wrong-password-1", "csrf_token": token}
        )

    return {
        ("POST", "/api/v1/ask"): lambda http: http.post("/api/v1/ask", json={"text": "ile kosztuje karta"}),
        ("POST", "/api/v1/feedback"): lambda http: http.post(
            "/api/v1/feedback",
            json={"question": "opłata", "article_id": "fees", "language": "pl", "helpful": True},
        ),
        ("GET", "/api/v1/conversations/{session_id}/messages"): lambda http: http.get(
            f"/api/v1/conversations/{session_id}/messages"
        ),
        ("GET", "/api/v1/kb/articles/{topic_id}"): lambda http: http.get(
            "/api/v1/kb/articles/fees", params={"language": "pl"}
        ),
        ("GET", "/readyz"): lambda http: http.get("/readyz"),
        ("POST", "/login"): form_sign_in,
        ("POST", "/api/v1/auth/login"): lambda http: http.post(
            "/api/v1/auth/login", json={"username": stranger, "password": "wrong-password-1"}
        ),
    }


async def test_every_limited_public_route_answers_429_with_retry_after(
    strict_app: FastAPI, pg_engine: AsyncEngine
) -> None:
    limited = {route for route, kind in PUBLIC.items() if kind == LIMITED}
    async with rolled_back(strict_app, pg_engine):
        async with httpx.AsyncClient(
            transport=_transport(strict_app, _fresh_address()), base_url="http://t"
        ) as setup:
            session_id = (await setup.post("/api/v1/ask", json={"text": "opłata"})).json()["session_id"]
        requests = _limited_requests(session_id)
        assert set(requests) == limited, "every LIMITED route needs a request here"
        for route, send in requests.items():
            async with httpx.AsyncClient(
                transport=_transport(strict_app, _fresh_address()), base_url="http://t"
            ) as http:
                statuses = [(await send(http)).status_code for _ in range(throttle.FREE_FAILURES + 1)]
                refused = await send(http)
            assert 429 not in statuses[:3], (route, statuses)
            assert refused.status_code == 429, (route, statuses, refused.status_code)
            assert 1 <= int(refused.headers["Retry-After"]) <= throttle.LONGEST_WAIT_SECONDS, route
        async with httpx.AsyncClient(
            transport=_transport(strict_app, _fresh_address()), base_url="http://t"
        ) as other:
            fresh = await other.get("/api/v1/kb/articles/fees", params={"language": "pl"})
            assert fresh.status_code == 200, "the limit is per address: someone else is still served"


TELEGRAM_SECRET = "telegram-webhook-secret-of-the-test"
TWILIO_TOKEN = "twilio-auth-token-of-the-test"
CASES_TOKEN = "cases-token-of-the-test-0123456789"
METRICS_TOKEN = "metrics-token-of-the-test"
PUBLIC_URL = "https://infoopt.example.gov.pl"


class RecordingChannel:
    """Stands in for the Telegram channel, recording the updates it is handed: aiogram's router attaches to
    one dispatcher per process, and test_telegram.py's app holds it. The webhook's secret check is real."""

    bot = None

    def __init__(self) -> None:
        self.updates: list[int] = []

    async def process(self, update: Any, webhook_reply: Any = None) -> None:
        self.updates.append(update.update_id)


@pytest.fixture
async def secured_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """Telegram's webhook, Twilio, the case import and /metrics configured with their secrets."""
    configured = settings.model_copy(
        update={
            "public_url": PUBLIC_URL,
            "telegram": TelegramSettings(webhook_secret=SecretStr(TELEGRAM_SECRET)),
            "twilio": TwilioSettings(account_sid="AC" + "0" * 32, auth_token=SecretStr(TWILIO_TOKEN)),
            "cases_token": SecretStr(CASES_TOKEN),
            "metrics_token": SecretStr(METRICS_TOKEN),
        }
    )
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        application.state.services.telegram = RecordingChannel()
        yield application
        application.state.services.telegram = None  # nothing of Telegram's to close


async def test_every_secret_guarded_public_route_refuses_callers_without_the_secret(
    secured_app: FastAPI, pg_engine: AsyncEngine
) -> None:
    guarded = sorted(route for route, kind in PUBLIC.items() if kind == SECRET)
    call_params = {"CallSid": "CA" + "1" * 32, "From": "+48600100200", "To": "+48122102020"}
    wrong = {
        "/telegram/webhook": {"X-Telegram-Bot-Api-Secret-Token": "guess"},
        "/api/v1/cases/import": {"Authorization": "Bearer guess"},
        "/metrics": {"Authorization": "Bearer guess"},
    }
    bodies: dict[str, Any] = {"/telegram/webhook": {"update_id": 7}, "/api/v1/cases/import": []}
    async with (
        rolled_back(secured_app, pg_engine),
        httpx.AsyncClient(transport=_transport(secured_app), base_url="http://t") as http,
    ):
        for method, path in guarded:
            if path.startswith("/twilio/"):
                forged = await http.post(path, data=call_params, headers={"X-Twilio-Signature": "forged"})
                unsigned = await http.post(path, data=call_params)
                assert forged.status_code == unsigned.status_code == 403, path
                continue
            body = bodies.get(path)
            without = await http.request(method, path, json=body)
            guessed = await http.request(method, path, json=body, headers=wrong[path])
            assert without.status_code in (401, 403, 404) and guessed.status_code in (401, 403, 404), path
            assert guessed.status_code == without.status_code or path == "/telegram/webhook", path
        # With the secret, the same requests go through: the refusals above were about the secret.
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(
            PUBLIC_URL + "/twilio/voice", call_params
        )
        assert (
            await http.post("/twilio/voice", data=call_params, headers={"X-Twilio-Signature": signature})
        ).status_code == 200
        assert secured_app.state.services.telegram.updates == [], "no update got past a wrong secret"
        telegram = await http.post(
            "/telegram/webhook",
            json={"update_id": 7},
            headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        )
        assert telegram.status_code == 200 and secured_app.state.services.telegram.updates == [7]
        imported = await http.post(
            "/api/v1/cases/import", json=[], headers={"Authorization": f"Bearer {CASES_TOKEN}"}
        )
        assert imported.status_code == 200
        metrics = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert metrics.status_code == 200


class _Counter:
    """Counts what one request asks of the database (statements) and of Redis (connections taken)."""

    def __init__(self) -> None:
        self.statements = 0
        self.redis = 0

    def statement(self, *_args: Any) -> None:
        self.statements += 1


async def test_public_routes_without_a_limit_touch_neither_the_database_nor_redis(
    app: FastAPI, pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet = sorted(route for route, kind in PUBLIC.items() if kind == NO_IO)
    examples = {"/static": "/static/chat.js", "/docs-assets": "/docs-assets/swagger-ui.css"}
    services = app.state.services
    counter = _Counter()
    pool = services.redis.connection_pool
    taken = pool.get_connection

    async def counted_connection(*args: Any, **kwargs: Any) -> Any:
        counter.redis += 1
        return await taken(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counted_connection)
    engines = [pg_engine.sync_engine, services.engine.sync_engine]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", counter.statement)
    try:
        async with httpx.AsyncClient(transport=_transport(app), base_url="http://t") as http:
            await http.get("/openapi.json")  # built once per process, then served from memory
            for _method, path in quiet:
                counter.statements = counter.redis = 0
                response = await http.get(examples.get(path, path), params={"to": "pl"})
                assert response.status_code in (200, 303), (path, response.status_code)
                assert (counter.statements, counter.redis) == (0, 0), (path, counter.__dict__)
            # The counters do count: a limited read takes Redis, a conversation's messages the database.
            counter.statements = counter.redis = 0
            await http.get("/api/v1/kb/articles/fees", params={"language": "pl"})
            assert counter.redis >= 1
            session_id = (await http.post("/api/v1/ask", json={"text": "opłata"})).json()["session_id"]
            counter.statements = 0
            await http.get(f"/api/v1/conversations/{session_id}/messages")
            assert counter.statements >= 1
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", counter.statement)
