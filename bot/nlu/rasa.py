"""The Rasa 3.6 server over HTTP (`rasa run --enable-api`), at `INFOOPT_RASA_URL`."""

from __future__ import annotations

from typing import Any

import httpx

from bot.nlu.engine import IntentScore, NluResult, NluUnavailable

FALLBACK_INTENT = "nlu_fallback"


def result_from_rasa(text: str, payload: dict[str, Any]) -> NluResult:
    """Translate a `/model/parse` answer into an NluResult, resolving `faq` to its `faq/<topic>`."""
    intent = payload.get("intent") or {}
    name = str(intent.get("name") or FALLBACK_INTENT)
    confidence = float(intent.get("confidence") or 0.0)
    ranking = [
        IntentScore(str(item["name"]), float(item["confidence"]))
        for item in payload.get("intent_ranking") or []
        if item.get("name")
    ]
    selector = (payload.get("response_selector") or {}).get("faq") or {}
    faq_ranking = [
        IntentScore(str(item["intent_response_key"]), float(item["confidence"]))
        for item in selector.get("ranking") or []
        if item.get("intent_response_key")
    ]
    if name == "faq" and faq_ranking:
        # Rasa splits the decision: DIET says "faq", the ResponseSelector says which topic.
        # The topic's confidence is the product, so a sure "faq" with an unsure topic stays unsure.
        best = IntentScore(faq_ranking[0].name, confidence * faq_ranking[0].confidence)
        others = [score for score in ranking if score.name != "faq"]
        topics = [IntentScore(s.name, confidence * s.confidence) for s in faq_ranking]
        ranking = sorted(topics + others, key=lambda score: score.confidence, reverse=True)
    else:
        best = IntentScore(name, confidence)
        if name == FALLBACK_INTENT and faq_ranking:
            ranking = sorted(
                [*ranking, *(IntentScore(s.name, s.confidence * 0.5) for s in faq_ranking)],
                key=lambda score: score.confidence,
                reverse=True,
            )
    entities = {
        str(entity["entity"]): str(entity["value"])
        for entity in payload.get("entities") or []
        if entity.get("entity") and entity.get("value") is not None
    }
    return NluResult(text=text, best=best, ranking=tuple(ranking), engine="rasa", entities=entities)


class RasaEngine:
    """Parses through a running Rasa server; any transport problem is NluUnavailable."""

    name = "rasa"

    def __init__(
        self, base_url: str, *, timeout: float = 2.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def parse(self, text: str) -> NluResult:
        try:
            response = await self._client.post("/model/parse", json={"text": text})
            response.raise_for_status()
            payload = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise NluUnavailable(f"Rasa at {self.base_url}: {error!s}") from error
        return result_from_rasa(text, payload)

    async def check(self) -> str:
        try:
            response = await self._client.get("/status")
            response.raise_for_status()
            status = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise NluUnavailable(f"Rasa at {self.base_url}: {error!s}") from error
        model = status.get("model_file")
        if not model:
            raise NluUnavailable(f"Rasa at {self.base_url} has no model loaded")
        return f"rasa ({model})"

    async def close(self) -> None:
        await self._client.aclose()
