"""What a process builds at start: the app's published articles in memory before the first question
(a turn never takes a second database connection for one), the holidays calendar ready for the first
hand-over, and an outbox worker that loads no NLU model at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.nlu.engine import NluUnavailable
from infoopt import services as wiring
from infoopt.core.clock import utcnow
from infoopt.core.settings import Settings
from infoopt.services import Services
from tickets.offices import polish_public_holidays


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


@pytest.mark.usefixtures("synced_kb")
async def test_a_started_app_answers_published_articles_from_memory(settings: Settings) -> None:
    polish_public_holidays.cache_clear()
    services = await Services.start(settings.model_copy(update={"outbox_in_process": False}))
    try:
        with statements(services.engine) as seen:
            fees = await services.kb_cache.get("fees", "uk")
            stamp = await services.kb_cache.get("stamp_and_legal_stay", "en")
        assert fees is not None and stamp is not None
        assert seen == [], "no query, so no second connection inside a person's turn"
        year = utcnow().year
        assert polish_public_holidays.cache_info().currsize >= 2, "this year's and next year's holidays"
        before = polish_public_holidays.cache_info().hits
        polish_public_holidays(year)
        assert polish_public_holidays.cache_info().hits == before + 1
    finally:
        await services.close()


@pytest.mark.usefixtures("synced_kb")
async def test_past_the_safety_ttl_a_started_app_reads_every_article_again_in_one_go(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache's safety refresh reads all published articles at once (two statements), not each
    expired entry on a session of its own; the turns meanwhile are served the entries they had."""
    import asyncio
    import time
    from types import SimpleNamespace

    from knowledge_base import cache as cache_module

    services = await Services.start(settings.model_copy(update={"outbox_in_process": False}))
    try:
        monkeypatch.setattr(cache_module, "time", SimpleNamespace(monotonic=lambda: time.monotonic() + 120))
        with statements(services.engine) as seen:
            for topic, language in (("fees", "uk"), ("stamp_and_legal_stay", "en"), ("fees", "pl")):
                assert await services.kb_cache.get(topic, language) is not None
            assert seen == [], "served at once, refreshed in the background"
            for _ in range(100):
                await asyncio.sleep(0.05)
                if len(seen) >= 2:
                    break
            await asyncio.sleep(0.2)
        assert len(seen) == 2, seen  # the served revisions, and the topics' latest changes
    finally:
        await services.close()


async def test_an_outbox_worker_loads_no_nlu_model(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(_settings: Settings) -> Any:
        raise AssertionError("an outbox worker must not train or load an NLU model")

    monkeypatch.setattr(wiring, "build_embedded", never)
    monkeypatch.setattr(wiring, "build_detector", never)
    data = tmp_path / "data"
    services = await Services.start(
        settings.model_copy(update={"data_dir": data, "outbox_in_process": False}), parses=False
    )
    try:
        with pytest.raises(NluUnavailable):
            await services.nlu.check()
        assert not (data / "nlu").exists(), "nothing trained or cached"
    finally:
        await services.close()


def test_the_worker_runs_on_uvloop_when_it_is_installed() -> None:
    import uvloop

    from infoopt.cli import event_loop_runner

    assert event_loop_runner() is uvloop.run
