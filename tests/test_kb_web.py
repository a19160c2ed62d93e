"""The knowledge-base API and the admin pages over HTTP, on the real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.app import create_app
from infoopt.core.settings import Settings
from tests.conftest import sign_in

pytestmark = pytest.mark.usefixtures("synced_kb")

CONTRACT_FIELDS = {
    "topic_id",
    "language",
    "title",
    "short_answer",
    "body",
    "sources",
    "verified_on",
    "valid_until",
}


async def test_article_api_answers_the_contract_fields(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/kb/articles/fees", params={"language": "uk"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= CONTRACT_FIELDS
    assert (body["topic_id"], body["language"]) == ("fees", "uk")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["verified_on"])
    assert body["sources"] and all(url.startswith("http") for url in body["sources"])
    assert len(body["short_answer"]) <= 400


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/kb/articles/weather", {"language": "pl"}, 404),
        ("/api/v1/kb/articles/fees", {"language": "de"}, 404),
        ("/api/v1/kb/articles/fees", {}, 422),
        ("/api/v1/kb/articles/fees", {"language": "x" * 50}, 422),
    ],
)
async def test_article_api_refuses_unknown_topics_and_languages(
    client: httpx.AsyncClient, path: str, params: dict[str, str], status: int
) -> None:
    response = await client.get(path, params=params)
    assert response.status_code == status
    assert response.json()["detail"]


async def test_every_seed_article_is_served(client: httpx.AsyncClient) -> None:
    from infoopt.core.languages import LANGUAGES
    from knowledge_base.topics import catalogue

    for topic_id in catalogue().topic_ids:
        for language in LANGUAGES:
            response = await client.get(f"/api/v1/kb/articles/{topic_id}", params={"language": language})
            assert response.status_code == 200, (topic_id, language)


async def test_admin_pages_send_strangers_to_the_sign_in_form(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/kb")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/admin/kb")


async def test_search_api_needs_a_signed_in_staff_member(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/kb/search", params={"q": "karta"})
    assert response.status_code == 401


async def test_a_consultant_may_search_but_not_edit(app: FastAPI, staff_accounts: dict[str, str]) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        signed = await sign_in(http, "kasia.konsultant", staff_accounts["kasia.konsultant"])
        assert signed.status_code == 303
        search = await http.get("/api/v1/kb/search", params={"q": "oplata skarbowa", "language": "pl"})
        assert search.status_code == 200
        assert "fees" in [hit["topic_id"] for hit in search.json()]
        page = await http.get("/admin/kb-search", params={"q": "CUKR"})
        assert page.status_code == 200 and "cukr_card" in page.text
        assert (await http.get("/admin/kb")).status_code == 403


async def test_sign_in_refuses_a_form_without_its_csrf_cookie(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/login", data={"username": "anna.admin", "password": "x", "csrf_token": "forged", "next": ""}
    )
    assert response.status_code == 403


async def test_next_after_sign_in_never_leaves_the_site(app: FastAPI, staff_accounts: dict[str, str]) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        form = await http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        response = await http.post(
            "/login",
            data={
                "username": "anna.admin",
                "password": staff_accounts["anna.admin"],
                "csrf_token": token,
                "next": "//evil.example.com/",
            },
        )
        assert response.headers["location"] == "/admin/kb"


@asynccontextmanager
async def _admin_client(
    app: FastAPI, staff_accounts: dict[str, str], username: str = "anna.admin"
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser-like client signed in as an admin, with the session's CSRF token."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        assert (await sign_in(http, username, staff_accounts[username])).status_code == 303
        page = await http.get("/admin/kb/study_residence/en/edit")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        yield http, csrf.group(1)


def _form_of(page: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name in ("title", "legal_basis", "verified_on", "valid_until"):
        match = re.search(rf'name="{name}" type="[a-z]+" value="([^"]*)"', page)
        fields[name] = match.group(1) if match else ""
    for name in ("short_answer", "body", "sources"):
        match = re.search(rf'name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
        assert match is not None, name
        fields[name] = match.group(1)
    import html

    return {key: html.unescape(value) for key, value in fields.items()}


async def test_an_admin_cannot_publish_alone_and_a_second_admin_approves(
    app: FastAPI, staff_accounts: dict[str, str]
) -> None:
    new_short = "Students apply for a temporary residence permit for studies in MOS. Updated by test."
    async with _admin_client(app, staff_accounts) as (anna, csrf):
        form = _form_of((await anna.get("/admin/kb/study_residence/en/edit")).text)
        assert 'value="publish"' not in (await anna.get("/admin/kb/study_residence/en/edit")).text
        alone = await anna.post(
            "/admin/kb/study_residence/en/edit",
            data={
                **form,
                "short_answer": new_short,
                "csrf_token": csrf,
                "action": "publish",
                "note": "alone",
            },
        )
        assert alone.status_code == 422 and "send it to review" in alone.text
        assert new_short in alone.text, "the typed text comes back"
        submitted = await anna.post(
            "/admin/kb/study_residence/en/edit",
            data={
                **form,
                "short_answer": new_short,
                "csrf_token": csrf,
                "action": "review",
                "note": "clearer",
            },
        )
        assert submitted.status_code == 303
        page = (await anna.get("/admin/kb/study_residence/en")).text
        assert "waiting for another admin" in page and "Approve and publish" not in page
        revision_id = re.search(r"/admin/kb/revisions/(\d+)/archive", page).group(1)  # type: ignore[union-attr]
        forced = await anna.post(
            f"/admin/kb/revisions/{revision_id}/publish", data={"csrf_token": csrf, "reason": "me again"}
        )
        assert forced.status_code == 403 and "another admin must review" in forced.text
        served = await anna.get("/api/v1/kb/articles/study_residence", params={"language": "en"})
        assert served.json()["short_answer"] != new_short

    async with _admin_client(app, staff_accounts, "marek.admin") as (marek, csrf):
        queue = (await marek.get("/admin/kb")).text
        assert "Waiting for your review" in queue and "study_residence</code> / en" in queue
        no_reason = await marek.post(
            f"/admin/kb/revisions/{revision_id}/publish", data={"csrf_token": csrf, "reason": " "}
        )
        assert no_reason.status_code == 422 and "why you publish" in no_reason.text
        approved = await marek.post(
            f"/admin/kb/revisions/{revision_id}/publish",
            data={"csrf_token": csrf, "reason": "checked sources"},
        )
        assert approved.status_code == 303
        served = await marek.get("/api/v1/kb/articles/study_residence", params={"language": "en"})
        assert served.json()["short_answer"] == new_short
        page = (await marek.get("/admin/kb/study_residence/en")).text
        assert "reviewed and published by marek.admin" in page and "checked sources" in page


async def test_the_article_page_shows_the_topics_content_review(
    app: FastAPI, staff_accounts: dict[str, str]
) -> None:
    from knowledge_base.reviews import review_log

    log = review_log("blue_card")
    assert log is not None
    async with _admin_client(app, staff_accounts) as (http, _csrf):
        page = (await http.get("/admin/kb/blue_card/en")).text
    assert f"Content review of {log.reviewed_on}: {len(log.claims)} claims checked" in page
    assert page.count("<tr><td>") >= len(log.claims)


async def test_a_revision_sent_back_shows_the_author_why(
    app: FastAPI, staff_accounts: dict[str, str]
) -> None:
    async with _admin_client(app, staff_accounts) as (anna, csrf):
        form = _form_of((await anna.get("/admin/kb/family_reunification/en/edit")).text)
        await anna.post(
            "/admin/kb/family_reunification/en/edit",
            data={**form, "title": "Family reunification (new)", "csrf_token": csrf, "action": "review"},
        )
        page = (await anna.get("/admin/kb/family_reunification/en")).text
        revision_id = re.search(r"/admin/kb/revisions/(\d+)/archive", page).group(1)  # type: ignore[union-attr]
    async with _admin_client(app, staff_accounts, "marek.admin") as (marek, csrf):
        comment = "Name the 2-year condition for the sponsor; cite art. 159."
        returned = await marek.post(
            f"/admin/kb/revisions/{revision_id}/return", data={"csrf_token": csrf, "reason": comment}
        )
        assert returned.status_code == 303
    async with _admin_client(app, staff_accounts) as (anna, csrf):
        matrix = (await anna.get("/admin/kb")).text
        assert "Sent back to you" in matrix and "Name the 2-year condition" in matrix
        editor = (await anna.get(f"/admin/kb/family_reunification/en/edit?revision={revision_id}")).text
        assert "Sent back by marek.admin" in editor and "Name the 2-year condition" in editor
        assert "Family reunification (new)" in editor, "the author continues from the returned text"


async def test_a_rejected_edit_keeps_everything_that_was_typed(
    app: FastAPI, staff_accounts: dict[str, str]
) -> None:
    async with _admin_client(app, staff_accounts) as (http, csrf):
        form = _form_of((await http.get("/admin/kb/study_residence/ru/edit")).text)
        typed = "Очень длинный короткий ответ " * 20
        response = await http.post(
            "/admin/kb/study_residence/ru/edit",
            data={**form, "short_answer": typed, "csrf_token": csrf, "action": "publish", "note": "x"},
        )
        assert response.status_code == 422
        assert "at most 400" in response.text
        assert typed.strip()[:60] in response.text, "the typed text comes back in the form"


async def test_publishing_without_a_reason_is_refused(app: FastAPI, staff_accounts: dict[str, str]) -> None:
    async with _admin_client(app, staff_accounts) as (http, csrf):
        form = _form_of((await http.get("/admin/kb/study_residence/uk/edit")).text)
        response = await http.post(
            "/admin/kb/study_residence/uk/edit",
            data={**form, "csrf_token": csrf, "action": "publish", "note": ""},
        )
        assert response.status_code == 422
        assert "why you publish" in response.text


async def test_forms_without_the_session_csrf_token_are_refused(
    app: FastAPI, staff_accounts: dict[str, str]
) -> None:
    async with _admin_client(app, staff_accounts) as (http, _csrf):
        form = _form_of((await http.get("/admin/kb/study_residence/pl/edit")).text)
        response = await http.post(
            "/admin/kb/study_residence/pl/edit", data={**form, "csrf_token": "forged", "action": "draft"}
        )
        assert response.status_code == 403


async def test_matrix_page_shows_every_cell(app: FastAPI, staff_accounts: dict[str, str]) -> None:
    async with _admin_client(app, staff_accounts) as (http, _csrf):
        page = await http.get("/admin/kb")
        assert page.status_code == 200
        assert page.text.count('data-cell="') == 144


async def test_preview_sanitises_html_in_content(app: FastAPI, staff_accounts: dict[str, str]) -> None:
    async with _admin_client(app, staff_accounts) as (http, csrf):
        response = await http.post(
            "/admin/kb/preview",
            data={"csrf_token": csrf, "body": "**ok** <script>alert(1)</script> [x](javascript:alert(1))"},
        )
        html = response.json()["html"]
        assert "<strong>ok</strong>" in html
        assert "<script>" not in html and 'href="javascript' not in html


async def test_backlog_groups_similar_failures_and_exports_training_examples(
    app: FastAPI, staff_accounts: dict[str, str], pg_engine: object
) -> None:
    from infoopt.core import db
    from knowledge_base.backlog import record_failure
    from knowledge_base.models import FailureKind

    texts = [
        "skolko stoit parkovka vozle urzedu",
        "сколько стоит парковка возле ужонда",
        "skolko stoit parkovka u urzedu?",
        "how do I adopt a cat in krakow",
    ]
    async with db.transaction(db.session_factory(pg_engine)) as session:  # type: ignore[arg-type]
        for text in texts:
            await record_failure(session, kind=FailureKind.FALLBACK, text=text, language="ru")
        await record_failure(
            session,
            kind=FailureKind.NOT_HELPFUL,
            text="ile kosztuje zmiana karty",
            language="pl",
            topic_id="fees",
        )
    async with _admin_client(app, staff_accounts) as (http, csrf):
        page = await http.get("/admin/kb-backlog")
        assert page.status_code == 200
        assert 'href="/admin/kb/fees/pl/edit"' in page.text, "a voted-down answer links to its editor"
        groups = page.text.split('<div class="card backlog-group">')[1:]
        parking_group = next(group for group in groups if "parkovka vozle" in group)
        assert "парковка" in parking_group and "adopt a cat" not in parking_group, (
            "similar texts form one group"
        )
        parking = re.search(r'name="ids" value="([^"]+)"', parking_group).group(1)  # type: ignore[union-attr]
        assert parking.count(",") >= 2
        exported = await http.post(
            "/admin/kb-backlog/resolve",
            data={"csrf_token": csrf, "ids": parking, "action": "train", "intent": "out_of_scope"},
        )
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("application/x-yaml")
        assert "- intent: out_of_scope" in exported.text and "parkovka" in exported.text
        after = await http.get("/admin/kb-backlog")
        assert "parkovka vozle" not in after.text, "exported failures leave the backlog"
        refused = await http.post(
            "/admin/kb-backlog/resolve",
            data={"csrf_token": csrf, "ids": "1", "action": "train", "intent": "faq/weather"},
        )
        assert refused.status_code == 422


async def test_a_publish_reaches_another_worker_within_a_second(
    settings: Settings, staff_accounts: dict[str, str]
) -> None:
    """Two app instances share PostgreSQL and Redis like two uvicorn workers (one admin publishing alone)."""
    single_admin = settings.model_copy(update={"kb_second_reviewer": False})
    worker_a, worker_b = create_app(single_admin), create_app(single_admin)
    async with worker_a.router.lifespan_context(worker_a), worker_b.router.lifespan_context(worker_b):
        b = httpx.AsyncClient(transport=httpx.ASGITransport(app=worker_b), base_url="http://b")
        async with b:
            before = await b.get("/api/v1/kb/articles/family_reunification", params={"language": "uk"})
            assert before.status_code == 200  # now cached in worker B
            async with _admin_client(worker_a, staff_accounts) as (http, csrf):
                form = _form_of((await http.get("/admin/kb/family_reunification/uk/edit")).text)
                form["title"] = "Возз'єднання родини — оновлено"
                published = await http.post(
                    "/admin/kb/family_reunification/uk/edit",
                    data={**form, "csrf_token": csrf, "action": "publish", "note": "title"},
                )
                assert published.status_code == 303
                page = (await http.get("/admin/kb/family_reunification/uk")).text
                assert "without a second person's review" in page
            started = time.monotonic()
            while True:
                title = (
                    await b.get("/api/v1/kb/articles/family_reunification", params={"language": "uk"})
                ).json()["title"]
                if title == "Возз'єднання родини — оновлено":
                    break
                assert time.monotonic() - started < 1.0, "worker B still serves the old revision after 1 s"
                await asyncio.sleep(0.02)


async def test_staff_pages_show_data_as_people_read_it_and_never_raw_json(
    app: FastAPI, staff_accounts: dict[str, str], app_db: async_sessionmaker[AsyncSession]
) -> None:
    from infoopt.staff.audit import record_audit

    long_word = "x" * 2000
    async with app_db() as session:
        await record_audit(
            session,
            actor="anna.admin",
            action="revision.publish",
            object_type="article",
            object_id="fees/pl",
            reason=long_word,
            details={"revision": 7, "review": "second_person"},
        )
        await session.commit()
    async with _admin_client(app, staff_accounts) as (http, _csrf):
        audit = (await http.get("/admin/audit", params={"object_id": "fees/pl"})).text
        assert "revision 7 · review second_person" in audit and "{'revision'" not in audit
        diff = await http.get("/admin/kb/fees/pl/diff")
        assert diff.headers["content-type"].startswith("text/html"), "no raw JSON without from/to"
        assert diff.status_code in (200, 404)
    css = await http_get_static(app, "/static/infoopt.css")
    assert "overflow-wrap: anywhere" in css, "a 2,000-character word wraps instead of widening the page"


async def http_get_static(app: FastAPI, path: str) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        return (await http.get(path)).text
