"""The real Rasa 3.6 server started by scripts/test.sh, reached over HTTP like in production."""

from __future__ import annotations

import pytest

from bot.nlu.engine import FallbackEngine
from bot.nlu.rasa import RasaEngine
from infoopt.core.settings import Settings
from infoopt.services import build_embedded
from knowledge_base.topics import catalogue

pytestmark = pytest.mark.rasa


async def test_rasa_server_has_a_model_loaded(rasa_url: str) -> None:
    engine = RasaEngine(rasa_url)
    try:
        status = await engine.check()
    finally:
        await engine.close()
    assert status.startswith("rasa (")


async def test_rasa_resolves_a_faq_question_to_a_topic(rasa_url: str) -> None:
    engine = RasaEngine(rasa_url)
    try:
        result = await engine.parse("ile kosztuje karta pobytu i na jakie konto zapłacić")
    finally:
        await engine.close()
    assert result.engine == "rasa"
    assert result.intent in {"faq", "nlu_fallback", *catalogue().conversation_intents}
    assert result.ranking, "Rasa returns a ranking of candidates"
    topics = [score.topic_id for score in result.ranking if score.topic_id]
    assert topics and set(topics) <= set(catalogue().topic_ids)
    assert all(0.0 <= score.confidence <= 1.0 for score in result.ranking)


async def test_rasa_extracts_a_case_number(rasa_url: str) -> None:
    engine = RasaEngine(rasa_url)
    try:
        result = await engine.parse("check my case WSC-II-P.6151.12345.2025 please")
    finally:
        await engine.close()
    assert result.intent == "check_case_status"
    assert result.entities.get("case_number") == "WSC-II-P.6151.12345.2025"


async def test_fallback_engine_uses_rasa_while_it_is_up(rasa_url: str, settings: Settings) -> None:
    engine = FallbackEngine(RasaEngine(rasa_url), build_embedded(settings))
    try:
        result = await engine.parse("dzień dobry")
    finally:
        await engine.close()
    assert result.engine == "rasa"
