"""The staff pages speak the staff member's browser language (pl, uk, ru, en), English by default."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from fastapi import FastAPI

from tests.test_kb_web import _admin_client

pytestmark = pytest.mark.usefixtures("synced_kb")

POLISH = {"Accept-Language": "pl-PL,pl;q=0.9"}


def _html_lang(page: str) -> str:
    match = re.search(r'<html lang="([a-z]+)">', page)
    assert match is not None
    return match.group(1)


async def test_the_knowledge_base_answers_in_polish_for_a_polish_browser(
    app: FastAPI, staff_accounts: dict[str, str]
) -> None:
    async with _admin_client(app, staff_accounts) as (http, _csrf):
        polish = await http.get("/admin/kb", headers=POLISH)
        assert polish.status_code == 200
        assert _html_lang(polish.text) == "pl"
        assert "<h1>Baza wiedzy</h1>" in polish.text
        assert "Ślad audytowy" in polish.text and "Wyloguj się" in polish.text
        assert "Knowledge base" not in polish.text

        english = await http.get("/admin/kb")
        assert english.status_code == 200
        assert _html_lang(english.text) == "en"
        assert "<h1>Knowledge base</h1>" in english.text
        assert "Baza wiedzy" not in english.text

        # The same data-cell markup in both: only the words change.
        assert polish.text.count('data-cell="') == english.text.count('data-cell="') > 0


async def test_the_editor_and_the_article_page_follow_the_browser(
    app: FastAPI, staff_accounts: dict[str, str]
) -> None:
    async with _admin_client(app, staff_accounts) as (http, _csrf):
        editor = (await http.get("/admin/kb/fees/pl/edit", headers=POLISH)).text
        assert "Zapisz szkic" in editor and 'id="review-button"' in editor
        article = (await http.get("/admin/kb/fees/pl", headers={"Accept-Language": "uk,en;q=0.5"})).text
        assert _html_lang(article) == "uk" and "Редагувати" in article and "Версії" in article
        russian = (await http.get("/admin/kb-search", headers={"Accept-Language": "ru"})).text
        assert _html_lang(russian) == "ru" and "Поиск по опубликованным ответам" in russian


async def test_sign_in_page_and_its_errors_follow_the_browser(
    client: httpx.AsyncClient, staff_accounts: dict[str, str]
) -> None:
    form = await client.get("/login", headers=POLISH)
    assert _html_lang(form.text) == "pl" and "Nazwa użytkownika" in form.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    refused = await client.post(
        "/login",
        headers=POLISH,
        data={"username": "anna.admin", "password": "wrong", "csrf_token": token.group(1), "next": ""},
    )
    assert refused.status_code == 401
    assert "Nieprawidłowa nazwa użytkownika lub hasło" in refused.text
    english = await client.get("/login")
    assert _html_lang(english.text) == "en" and "Username" in english.text


@pytest.mark.commits  # concurrent requests need connections of their own
async def test_concurrent_requests_each_get_their_own_language(
    app: FastAPI, staff_accounts: dict[str, str]
) -> None:
    """The language lives in each request's render context, not in shared state."""
    headings = {"pl": "Baza wiedzy", "uk": "База знань", "ru": "База знаний", "en": "Knowledge base"}
    async with _admin_client(app, staff_accounts) as (http, _csrf):
        languages = list(headings) * 5
        pages = await asyncio.gather(
            *(http.get("/admin/kb", headers={"Accept-Language": language}) for language in languages)
        )
    for language, page in zip(languages, pages, strict=True):
        assert _html_lang(page.text) == language
        assert f"<h1>{headings[language]}</h1>" in page.text


async def test_the_staff_language_can_be_switched_on_the_page(
    client: httpx.AsyncClient, staff_accounts: dict[str, str]
) -> None:
    from tests.conftest import sign_in

    await sign_in(client, "kasia.konsultant", staff_accounts["kasia.konsultant"])
    polish = await client.get("/staff/tickets", headers={"Accept-Language": "pl"})
    assert '<html lang="pl">' in polish.text
    switched = await client.get("/staff/language", params={"to": "en", "next": "/staff/tickets"})
    assert switched.status_code == 303 and switched.headers["location"] == "/staff/tickets"
    page = await client.get("/staff/tickets", headers={"Accept-Language": "pl"})
    assert '<html lang="en">' in page.text and "Take the next ticket" in page.text
    outside = await client.get("/staff/language", params={"to": "en", "next": "https://evil.example/"})
    assert outside.headers["location"] == "/admin/kb", "never a redirect off the site"
