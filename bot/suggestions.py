"""Suggested answers for a consultant: the NLU's likeliest topics for a ticket, as published articles."""

from __future__ import annotations

import logging

from bot.conversation import ArticleLookup
from bot.nlu.engine import NluEngine, NluUnavailable
from infoopt.core.clock import utcnow
from tickets.routes import Suggestion

log = logging.getLogger(__name__)

MAX_SUGGESTIONS = 3


class KnowledgeSuggester:
    """Up to three published, current answers in the person's language for what they wrote."""

    def __init__(self, nlu: NluEngine, articles: ArticleLookup) -> None:
        self.nlu = nlu
        self.articles = articles

    async def __call__(self, text: str, language: str) -> list[Suggestion]:
        try:
            result = await self.nlu.parse(text[:2000])
        except NluUnavailable as error:  # the consultant still has the search page
            log.warning("suggestions.nlu_unavailable", extra={"error": str(error)})
            return []
        suggestions: list[Suggestion] = []
        today = utcnow().date()
        for score in result.ranking:
            if score.topic_id is None or len(suggestions) == MAX_SUGGESTIONS:
                continue
            article = await self.articles(score.topic_id, language)
            if article is None or article.expired(today):
                continue
            suggestions.append(
                Suggestion(
                    topic_id=article.topic_id,
                    title=article.title,
                    short_answer=article.short_answer,
                    body=article.body,
                    confidence=round(float(score.confidence), 4),
                )
            )
        return suggestions
