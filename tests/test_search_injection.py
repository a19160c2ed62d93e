"""Injection and odd text in everything that takes free text: the knowledge-base search (API, page, and the
SQLite default's LIKE), the ticket queue's filters, the audit filters, and every query parameter, path
parameter and form field of every staff route, read from the route table. Nothing answers 5xx, and no
wildcard or quote widens a result: a search finds what its words find, and no more."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from infoopt.core import db
from knowledge_base import service as kb
from knowledge_base.files import ARTICLES_DIR
from knowledge_base.models import Article, ArticleRevision
from tests.conftest import bearer
from tests.test_desk_pages import person_with_ticket
from tests.test_route_security import STATE_CHANGING, STREAMS, World, browser, filled, staff_routes, world

pytestmark = pytest.mark.usefixtures("synced_kb", "desk_staff", "staff_accounts")
__all__ = ["world"]  # the fixture, shared with the route-security tests

ADMIN_PASSWORD = "Admin-password-2026"

# Text with nothing but punctuation a query language or LIKE would read as syntax.
WILDCARDS = [
    "%",
    "_",
    "%%",
    "__",
    "%_%",
    "*",
    "'",
    "''",
    '"',
    "\\",
    "\\\\",
    "\\%",
    ":*",
    "&",
    "|",
    "!",
    "<->",
]
HOSTILE = [
    *WILDCARDS,
    "' OR 1=1 --",
    "' OR '1'='1",
    "karta' OR '1'='1' --",
    "1; DROP TABLE ticket; --",
    "karta%",
    "%karta%",
    "kar_a",
    "\x00",
    "kar\x00ta",
    "karta & !pobyt | (x)",
    "karta:* | a:*",
    "ｋａｒｔａ",  # fullwidth
    "КАРТА ПОБУТУ",
    "كارت إقامة",
    "居留卡",
    "🙂 karta 🙂",
    "k\u0301a\u0308rta",  # combining marks
    "\u202ekarta\u202c",  # right-to-left override
    "\u200bkarta\u200b",
    "x" * 200,
    "karta " * 33,
]


def hit_keys(hits: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(hit["topic_id"], hit["language"]) for hit in hits]


# --- the knowledge-base search -----------------------------------------------------------------------


async def test_hostile_text_in_the_search_api_is_never_a_5xx(client: httpx.AsyncClient) -> None:
    headers = await bearer(client, "tomasz.tarnow")
    for query in HOSTILE:
        response = await client.get("/api/v1/kb/search", params={"q": query}, headers=headers)
        assert response.status_code in (200, 422), (query, response.status_code)
        if len(query.strip()) >= 2 and "\x00" not in query:
            assert response.status_code == 200, (query, response.text)
    too_long = await client.get("/api/v1/kb/search", params={"q": "karta" * 1000}, headers=headers)
    assert too_long.status_code == 422 and too_long.json()["error"] == "invalid_request"


async def test_wildcards_and_quotes_find_nothing_and_widen_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    headers = await bearer(client, "tomasz.tarnow")

    async def search(query: str) -> list[tuple[str, str]]:
        response = await client.get("/api/v1/kb/search", params={"q": query}, headers=headers)
        assert response.status_code == 200, (query, response.text)
        return hit_keys(response.json())

    async def everything_found(query: str) -> set[tuple[str, str]]:
        async with app.state.services.sessions() as session:
            hits = await kb.search_published(session, query, limit=1000)
        return {(hit.topic_id, hit.language) for hit in hits}

    plain = await search("karta pobytu")
    assert plain, "the plain words find answers"
    for junk in WILDCARDS:
        assert await search(junk * 2) == [], f"{junk!r} is no word: it must find nothing, not everything"
        assert await search(f"karta pobytu {junk}") == plain, f"{junk!r} changed what two words find"
    # A quote breaks nothing out: OR, 1 and -- are searched as words, so they only narrow.
    assert await everything_found("karta' OR '1'='1' --") <= await everything_found("karta")
    assert await everything_found("%karta%") == await everything_found("karta")
    # Case, width and invisible characters are folded away, not read as syntax.
    assert await search("ＫＡＲＴＡ ＰＯＢＹＴＵ") == plain
    assert await search("KARTA\u200b POBYTU") == plain


async def test_the_search_page_shows_hostile_queries_escaped(app: FastAPI) -> None:
    async with browser(app, "tomasz.tarnow") as tarnow:
        for query in HOSTILE:
            page = await tarnow.http.get("/admin/kb-search", params={"q": query})
            assert page.status_code == 200, (query, page.status_code)  # NULs never reach the database
        page = await tarnow.http.get("/admin/kb-search", params={"q": '"><script>alert(1)</script>'})
        assert (
            "<script>alert" not in page.text and "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        )
        nul = await tarnow.http.get("/admin/kb-search", params={"q": "karta", "language": "p\x00l"})
        assert nul.status_code == 422


async def test_search_on_the_sqlite_default_takes_wildcards_literally(sqlite_engine: AsyncEngine) -> None:
    """SQLite has no full-text search here: words are matched with LIKE, so "_" and "%" must be escaped."""
    async with db.transaction(db.session_factory(sqlite_engine)) as session:
        await kb.sync_from_files(session, ARTICLES_DIR)
        texts = (
            await session.exec(
                select(Article.topic_id, Article.language, ArticleRevision.search_text).join(
                    ArticleRevision, ArticleRevision.id == Article.published_revision_id
                )
            )
        ).all()
        underscore = await kb.search_published(session, "_", limit=200)
        percent = await kb.search_published(session, "%", limit=200)
        plain = await kb.search_published(session, "karta pobytu", language="pl", limit=200)
        widened = await kb.search_published(session, "karta pobytu %_", language="pl", limit=200)
    assert len(texts) == 144
    literal = {(topic, language) for topic, language, text in texts if "_" in text}
    assert {(h.topic_id, h.language) for h in underscore} == literal, (
        "'_' finds exactly the texts with a literal underscore (unescaped it would find all 144)"
    )
    assert len(literal) < len(texts)
    assert percent == []
    assert plain and {(h.topic_id, h.language) for h in widened} <= {(h.topic_id, h.language) for h in plain}


# --- the ticket queue's filters -------------------------------------------------------------------


async def test_queue_filters_match_exactly_and_wildcards_match_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    number = await person_with_ticket(client, "Pytanie o opłatę za kartę pobytu")
    supervisor = await bearer(client, "sylwia.supervisor")
    everything = (await client.get("/api/v1/tickets", headers=supervisor)).json()["items"]
    assert number in {t["number"] for t in everything}
    for assignee in ["%", "_", "%%", "' OR 1=1 --", "' OR '1'='1", "*", "\\"]:
        listed = await client.get("/api/v1/tickets", params={"assignee": assignee}, headers=supervisor)
        assert listed.status_code == 200 and listed.json()["items"] == [], assignee
    for office in ["%", "_", "TARNOW' OR '1'='1", "TARNOW%", "\x00"]:
        listed = await client.get("/api/v1/tickets", params={"office": office}, headers=supervisor)
        assert listed.status_code == 422, (office, "an office code is letters, digits and dashes")
    async with browser(app, "sylwia.supervisor") as page:
        shown = await page.http.get("/staff/tickets")
        assert number in shown.text
        for field in ("office", "assignee"):
            for value in ["%", "_", "' OR 1=1 --", "TARNOW' OR '1'='1", "%TARNOW%"]:
                for path in ("/staff/tickets", "/staff/tickets/rows"):
                    filtered = await page.http.get(path, params={field: value})
                    assert filtered.status_code == 200, (path, field, value)
                    assert number not in filtered.text and "No tickets here right now" in filtered.text
                nul = await page.http.get("/staff/tickets", params={field: "TAR\x00NOW"})
                assert nul.status_code == 422
        exact = await page.http.get("/staff/tickets", params={"office": "TARNOW"})
        assert number in exact.text, "the exact code still finds the ticket"


async def test_audit_filters_match_exactly(client: httpx.AsyncClient, app: FastAPI) -> None:
    async with browser(app, "anna.admin", ADMIN_PASSWORD) as admin:
        full = await admin.http.get("/admin/audit")
        assert full.status_code == 200 and full.text.count("<tr") > 1
        for field in ("actor", "object_id"):
            for value in ["%", "_", "' OR '1'='1", "anna%"]:
                filtered = await admin.http.get("/admin/audit", params={field: value})
                assert filtered.status_code == 200
                assert filtered.text.count("<tr") <= 1, (field, value, "a wildcard matched entries")
            assert (await admin.http.get("/admin/audit", params={field: "\x00"})).status_code == 422


# --- every parameter of every staff route -------------------------------------------------------------


def _parameters(dependant: Dependant) -> tuple[set[str], set[str]]:
    """The query parameters and form fields a route reads, its dependencies' included."""
    query = {field.alias for field in dependant.query_params}
    body = {field.alias for field in dependant.body_params}
    for child in dependant.dependencies:
        child_query, child_body = _parameters(child)
        query |= child_query
        body |= child_body
    return query, body


FUZZ = ["\x00", "%_", "' OR 1=1 --", "9" * 30, "<svg onload=alert(1)>"]
# The office page reads its form directly (no declared fields): its fields by name.
OFFICE_FORM_FIELDS = {"note", "phone", "sla_hours", "ticket_prefix", "monday_opens", "active"}


def _form_attempts(fields: set[str], value: str, token: str) -> list[dict[str, str]]:
    """A NUL in each field in turn (the database refuses it wherever it lands); other values everywhere
    at once."""
    plain = dict.fromkeys(fields, "x")
    if value != "\x00":
        return [{**dict.fromkeys(fields, value), "csrf_token": token}]
    return [{**plain, field: value, "csrf_token": token} for field in fields]


async def test_no_query_path_or_form_value_of_any_staff_route_gives_a_5xx(app: FastAPI, world: World) -> None:
    dependants = {
        (method, route.path): route.dependant
        for route in iter_route_contexts(app.routes)
        if getattr(route, "dependant", None) is not None
        for method in route.methods or ()
    }
    checked = 0
    async with browser(app, "anna.admin", ADMIN_PASSWORD) as admin:
        assert admin.token is not None
        for method, template in staff_routes(app):
            if (method, template) in STREAMS or template == "/logout":
                continue
            query, form = _parameters(dependants[(method, template)])
            form = (form or OFFICE_FORM_FIELDS) - {"csrf_token"}
            base = filled(template, world.ids)
            for value in FUZZ:
                attempts: list[tuple[str, dict[str, str], dict[str, str]]] = [
                    (filled(template, {**world.ids, name: value}), {}, {})
                    for name in re.findall(r"\{(\w+)", template)  # each path parameter in turn
                ]
                attempts += [(base, {name: value}, {}) for name in query]
                if method in STATE_CHANGING and not base.startswith("/api/"):
                    attempts += [(base, {}, data) for data in _form_attempts(form, value, admin.token)]
                for path, params, data in attempts:
                    response = await admin.http.request(method, path, params=params, data=data or None)
                    assert response.status_code < 500, (method, path, params, data, response.text[:300])
                    checked += 1
    assert checked > 300, checked
