"""Rasa down or hung: the embedded engine answers, and a circuit breaker keeps a hung Rasa from costing
every question the whole NLU timeout. The app-level test talks to a fake Rasa over a real socket, through
the same RasaEngine and httpx client production uses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.nlu.engine import FallbackEngine, IntentScore, NluResult, NluUnavailable
from infoopt.app import create_app
from infoopt.core.settings import Settings

pytestmark = pytest.mark.usefixtures("synced_kb")


class ScriptedEngine:
    """A primary engine that is down or up as the test says, counting the questions it was asked."""

    def __init__(self, name: str) -> None:
        self.name, self.up, self.asked = name, False, 0

    async def parse(self, text: str) -> NluResult:
        self.asked += 1
        if not self.up:
            raise NluUnavailable(f"{self.name} is down")
        best = IntentScore("faq/fees", 0.9)
        return NluResult(text=text, best=best, ranking=(best,), engine=self.name)

    async def check(self) -> str:
        return self.name

    async def close(self) -> None:
        return None


async def test_the_breaker_stops_asking_a_failing_primary_then_tries_it_again_after_the_cool_off() -> None:
    primary, fallback = ScriptedEngine("rasa"), ScriptedEngine("embedded")
    fallback.up = True
    engine = FallbackEngine(primary, fallback, failures=2, cool_off=0.3)

    for _ in range(2):
        assert (await engine.parse("opłata")).engine == "embedded"
    assert primary.asked == 2
    for _ in range(5):
        assert (await engine.parse("opłata")).engine == "embedded"
    assert primary.asked == 2, "while the circuit is open, the primary is not asked at all"

    await asyncio.sleep(0.35)
    assert (await engine.parse("opłata")).engine == "embedded"
    assert primary.asked == 3, "after the cool-off one question tries the primary again"
    assert (await engine.parse("opłata")).engine == "embedded"
    assert primary.asked == 3, "it failed again: the circuit is open for another cool-off"

    primary.up = True
    await asyncio.sleep(0.35)
    assert (await engine.parse("opłata")).engine == "rasa"
    assert (await engine.parse("opłata")).engine == "rasa"
    assert primary.asked == 5, "one success closes the circuit: the primary answers again"


class HungRasa:
    """A Rasa server that accepts every request and never answers (a stuck model, a full queue)."""

    def __init__(self) -> None:
        self.requests = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def parse(self, _request: web.Request) -> web.Response:
        self.requests += 1
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def status(self, _request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def start(self) -> None:
        application = web.Application()
        application.router.add_post("/model/parse", self.parse)
        application.router.add_get("/status", self.status)
        self.runner = web.AppRunner(application, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def hung_rasa() -> AsyncIterator[HungRasa]:
    server = HungRasa()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


QUESTIONS = [
    "Ile kosztuje karta pobytu?",
    "Czy mogę wyjechać z Polski ze stemplem w paszporcie?",
    "Jak złożyć wniosek przez MOS?",
    "Як змінити роботодавця, якщо я маю дозвіл на роботу?",
    "What is the CUKR card?",
    "Сколько ждать решения по делу?",
]


async def test_a_hung_rasa_costs_only_the_first_questions_the_timeout_and_every_question_is_answered(
    settings: Settings, hung_rasa: HungRasa, client: httpx.AsyncClient
) -> None:
    without_rasa = [(await client.post("/api/v1/ask", json={"text": text})).json() for text in QUESTIONS]
    timeout = 0.5
    with_hung_rasa = settings.model_copy(
        update={
            "rasa_url": hung_rasa.url,
            "nlu_timeout_seconds": timeout,
            "nlu_breaker_failures": 2,
            "nlu_breaker_seconds": 60.0,
        }
    )
    application = create_app(with_hung_rasa)
    answers: list[dict[str, Any]] = []
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as http:
            started = time.perf_counter()
            for text in QUESTIONS:
                response = await http.post("/api/v1/ask", json={"text": text})
                assert response.status_code == 200, response.text
                answers.append(response.json())
            elapsed = time.perf_counter() - started
            ready = await http.get("/readyz")

    assert all(answer["engine"] == "embedded" for answer in answers), [a["engine"] for a in answers]
    assert hung_rasa.requests == 2, (
        "after two timeouts the breaker stops sending questions to the hung server"
    )
    assert elapsed < 2 * timeout + 3, f"{elapsed:.1f} s: the later questions did not wait for the timeout"
    assert [(a["kind"], a["article_id"]) for a in answers] == [
        (a["kind"], a["article_id"]) for a in without_rasa
    ], "the same answers as a service without Rasa gives"
    assert sum(answer["kind"] == "answer" for answer in answers) >= 4
    assert ready.status_code == 200 and "degraded" in ready.json()["checks"]["nlu"]["detail"]


class SureishRasa(HungRasa):
    """A Rasa server that ranks every message "faq/fees" at 0.6 and "faq/residence_card" at 0.1: enough
    for the embedded engine's thresholds to answer, short of Rasa's own."""

    async def parse(self, request: web.Request) -> web.Response:
        self.requests += 1
        text = (await request.json())["text"]
        return web.json_response(
            {
                "text": text,
                "intent": {"name": "faq", "confidence": 1.0},
                "intent_ranking": [{"name": "faq", "confidence": 1.0}],
                "response_selector": {
                    "faq": {
                        "ranking": [
                            {"intent_response_key": "faq/fees", "confidence": 0.6},
                            {"intent_response_key": "faq/residence_card", "confidence": 0.1},
                        ]
                    }
                },
                "entities": [],
            }
        )

    async def status(self, _request: web.Request) -> web.Response:
        return web.json_response({"model_file": "fake.tar.gz"})


async def test_rasas_rankings_are_decided_by_rasas_own_thresholds(settings: Settings) -> None:
    """The same ranking the embedded engine's thresholds would answer is asked back when Rasa made it
    (Rasa's confidences run high: it answers only from 0.7)."""
    from bot.conversation import DecisionPolicy

    assert DecisionPolicy().answer <= 0.6 < DecisionPolicy().for_engine("rasa").answer
    rasa = SureishRasa()
    await rasa.start()
    try:
        application = create_app(settings.model_copy(update={"rasa_url": rasa.url}))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as http:
                reply = (await http.post("/api/v1/ask", json={"text": "ile kosztuje karta pobytu"})).json()
    finally:
        await rasa.stop()
    assert rasa.requests == 1 and reply["engine"] == "rasa"
    assert reply["kind"] == "clarify", reply["kind"]
    assert [option["value"] for option in reply["actions"] if option["action"] == "choose_topic"][:1] == [
        "fees"
    ]
