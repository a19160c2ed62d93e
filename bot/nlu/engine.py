"""The NLU interface every engine implements, and the engine that falls back from Rasa to embedded."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

log = logging.getLogger(__name__)

FAQ_PREFIX = "faq/"


@dataclass(frozen=True, slots=True)
class IntentScore:
    """One candidate label with the engine's confidence in it (0..1)."""

    name: str
    confidence: float

    @property
    def topic_id(self) -> str | None:
        """The knowledge-base topic for a `faq/<topic>` label, else None."""
        return self.name.removeprefix(FAQ_PREFIX) if self.name.startswith(FAQ_PREFIX) else None


@dataclass(frozen=True, slots=True)
class NluResult:
    """What an engine made of one text: the best label and the ranking behind it."""

    text: str
    best: IntentScore
    ranking: tuple[IntentScore, ...]
    engine: str
    entities: dict[str, str] = field(default_factory=dict)

    @property
    def intent(self) -> str:
        """`faq` for a knowledge-base topic, else the conversation intent (or `nlu_fallback`)."""
        return "faq" if self.best.topic_id else self.best.name

    @property
    def topic_id(self) -> str | None:
        return self.best.topic_id

    @property
    def confidence(self) -> float:
        return self.best.confidence


class NluUnavailable(RuntimeError):
    """The engine cannot parse right now (server down, model not loaded)."""


class NluEngine(Protocol):
    """Anything that turns text into ranked intents."""

    name: str

    async def parse(self, text: str) -> NluResult:
        """Rank the labels for `text`; raise NluUnavailable when the engine cannot answer."""
        ...

    async def check(self) -> str:
        """Raise NluUnavailable unless the engine can parse now; return a short status line."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class FallbackEngine:
    """The Rasa server first; the embedded engine whenever Rasa cannot answer.

    A Rasa server that hangs costs every question the whole NLU timeout before the fallback answers.
    So a circuit breaker (purgatory) stops asking it after `failures` failures in a row, for `cool_off`
    seconds; then one question tries it again, and one success closes the circuit. The breaker is per
    process: each worker finds out for itself, within a few questions.
    """

    CIRCUIT = "nlu-primary"

    def __init__(
        self, primary: NluEngine, fallback: NluEngine, *, failures: int = 3, cool_off: float = 15.0
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = f"{primary.name}+{fallback.name}"
        self.breaker = AsyncCircuitBreakerFactory(default_threshold=failures, default_ttl=cool_off)

    async def parse(self, text: str) -> NluResult:
        try:
            async with await self.breaker.get_breaker(self.CIRCUIT):
                return await self.primary.parse(text)
        except OpenedState:
            return await self.fallback.parse(text)  # the primary is cooling off: the fallback at once
        except NluUnavailable as error:
            log.warning("nlu.primary_unavailable", extra={"engine": self.primary.name, "error": str(error)})
            return await self.fallback.parse(text)

    async def check(self) -> str:
        try:
            return await self.primary.check()
        except NluUnavailable as error:
            status = await self.fallback.check()
            return f"degraded: {self.primary.name} unavailable ({error}); using {status}"

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()
