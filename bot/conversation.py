"""The channel-neutral conversation: text and the person's state in, a Reply out.

Language (chosen beats detected) → NLU → one of: an answer from the published article, a
clarification with the likeliest topics, an honest "not my business" with the way to a person,
or a handoff. Every channel (the ask API, the web chat, Telegram, the phone) goes through here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.locales import say
from bot.nlu.engine import IntentScore, NluEngine, NluResult, NluUnavailable
from bot.nlu.language import LanguageDetector
from bot.replies import Option, Reply, ReplyKind
from infoopt.core.languages import LANGUAGES
from knowledge_base.models import FailureKind
from knowledge_base.service import PublishedArticle

log = logging.getLogger(__name__)

MAX_TEXT = 2000
STATE_TTL_SECONDS = 24 * 3600
SMALLTALK = ("greet", "goodbye", "thanks")

ArticleLookup = Callable[[str, str], Awaitable[PublishedArticle | None]]
FailureRecorder = Callable[[FailureKind, str, str | None, str | None, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DecisionPolicy:
    """When to answer, when to ask back, when to give up. Tuned per engine on held-out data."""

    # Measured on the held-out set with the embedded engine (benchmarks/results/nlu_engines.md):
    # 84% answered right, 12% asked back with the right topic among the choices, under 2% answered wrong.
    answer: float = 0.45  # the top topic's confidence needed to answer outright
    margin: float = 0.2  # ...and its lead over the runner-up
    floor: float = 0.15  # below this nothing is understood
    misses_before_handoff: int = 2  # consecutive misunderstandings before a person takes over


@dataclass
class ConversationState:
    """What the bot remembers about one person between messages (in Redis, for a day)."""

    language: str | None = None
    chosen_language: bool = False
    misses: int = 0

    def dumps(self) -> str:
        return json.dumps({"language": self.language, "chosen": self.chosen_language, "misses": self.misses})

    @classmethod
    def loads(cls, raw: bytes | str | None) -> ConversationState:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            language = data.get("language")
            return cls(
                language=language if language in LANGUAGES else None,
                chosen_language=bool(data.get("chosen")),
                misses=int(data.get("misses") or 0),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one understood message, before any text is chosen."""

    kind: ReplyKind
    intent: str
    confidence: float
    topics: tuple[IntentScore, ...] = ()  # the topic to answer, or the two or three to offer


def decide(result: NluResult, policy: DecisionPolicy) -> Decision:
    """Answer, ask back, say it is not our business, or hand over — from the NLU ranking alone."""
    best = result.best
    if best.confidence >= policy.floor:
        if best.name in SMALLTALK:
            return Decision(ReplyKind.SMALLTALK, best.name, best.confidence)
        if best.name == "request_human":
            return Decision(ReplyKind.HANDOFF, "request_human", best.confidence)
        if best.name == "check_case_status":
            return Decision(ReplyKind.CASE_STATUS, "check_case_status", best.confidence)
    if best.name == "out_of_scope" and best.confidence >= policy.answer:
        return Decision(ReplyKind.OUT_OF_SCOPE, "out_of_scope", best.confidence)
    topics = [score for score in result.ranking if score.topic_id]
    if best.topic_id and best.confidence >= policy.answer:
        runner_up = topics[1].confidence if len(topics) > 1 else 0.0
        if best.confidence - runner_up >= policy.margin:
            return Decision(ReplyKind.ANSWER, "faq", best.confidence, (best,))
    candidates = [score for score in topics if score.confidence >= policy.floor / 2][:3]
    if candidates and candidates[0].confidence >= policy.floor:
        if len(candidates) == 1:
            if candidates[0].confidence >= policy.answer:
                return Decision(ReplyKind.ANSWER, "faq", candidates[0].confidence, (candidates[0],))
            candidates = topics[:2]
        return Decision(ReplyKind.CLARIFY, "faq", candidates[0].confidence, tuple(candidates))
    if best.name == "out_of_scope":
        return Decision(ReplyKind.OUT_OF_SCOPE, "out_of_scope", best.confidence)
    return Decision(ReplyKind.FALLBACK, "nlu_fallback", best.confidence)


class Conversation:
    """Answers one message at a time; all long-lived parts are injected."""

    def __init__(
        self,
        *,
        nlu: NluEngine,
        detector: LanguageDetector,
        articles: ArticleLookup,
        redis: Redis,
        record_failure: FailureRecorder | None = None,
        policy: DecisionPolicy | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.nlu = nlu
        self.detector = detector
        self.articles = articles
        self.redis = redis
        self.record_failure = record_failure
        self.policy = policy or DecisionPolicy()
        self.today = today

    # --- state ---------------------------------------------------------------------------------

    async def load_state(self, session_id: str | None) -> ConversationState:
        if not session_id:
            return ConversationState()
        try:
            return ConversationState.loads(await self.redis.get(f"conv:{session_id}"))
        except RedisError as error:  # forgetting is better than failing the person
            log.warning("conversation.state_unavailable", extra={"error": str(error)})
            return ConversationState()

    async def save_state(self, session_id: str | None, state: ConversationState) -> None:
        if not session_id:
            return
        try:
            await self.redis.set(f"conv:{session_id}", state.dumps(), ex=STATE_TTL_SECONDS)
        except RedisError as error:
            log.warning("conversation.state_unsaved", extra={"error": str(error)})

    # --- the turn ------------------------------------------------------------------------------

    def choose_language(self, text: str, requested: str | None, state: ConversationState) -> str:
        """A language the person chose wins; otherwise a confident detection; otherwise what we used before."""
        if requested in LANGUAGES:
            return requested
        if state.chosen_language and state.language:
            return state.language
        detection = self.detector.detect(text)
        if detection.confidence < 0.6 and state.language:
            return state.language
        return detection.language

    async def reply(
        self, text: str, *, language: str | None = None, session_id: str | None = None, channel: str = "api"
    ) -> Reply:
        """The bot's answer to one message."""
        text = " ".join(text.split())[:MAX_TEXT]
        state = await self.load_state(session_id)
        answer_language = self.choose_language(text, language, state)
        if language in LANGUAGES:
            state.chosen_language = True
        state.language = answer_language
        try:
            result = await self.nlu.parse(text)
        except NluUnavailable as error:
            log.error("conversation.nlu_unavailable", extra={"error": str(error)})
            reply = self._handoff(answer_language, "nlu_fallback", 0.0, say(answer_language, "handoff"))
        else:
            reply = await self._decide(result, answer_language, state)
        if reply.kind in (ReplyKind.FALLBACK, ReplyKind.OUT_OF_SCOPE):
            state.misses += 1
            if state.misses >= self.policy.misses_before_handoff:
                reply = replace(
                    reply,
                    kind=ReplyKind.HANDOFF,
                    handoff=True,
                    text=f"{reply.text}\n\n{say(answer_language, 'fallback_repeated')}",
                )
                state.misses = 0
        elif reply.kind is not ReplyKind.SMALLTALK:
            state.misses = 0
        await self.save_state(session_id, state)
        await self._remember_failure(reply, text, channel)
        return reply

    async def hand_over(
        self, text: str, *, language: str | None = None, session_id: str | None = None, channel: str = "api"
    ) -> Reply:
        """The person pressed "consultant": hand over without guessing what they meant."""
        state = await self.load_state(session_id)
        answer_language = self.choose_language(text or "", language, state)
        state.language, state.misses = answer_language, 0
        await self.save_state(session_id, state)
        reply = self._handoff(answer_language, "request_human", 1.0, say(answer_language, "handoff"))
        await self._remember_failure(reply, text, channel)
        return reply

    async def _decide(self, result: NluResult, language: str, state: ConversationState) -> Reply:
        decision = decide(result, self.policy)
        kind, confidence = decision.kind, decision.confidence
        if kind is ReplyKind.ANSWER:
            return await self._answer(decision.topics[0], language, result)
        if kind is ReplyKind.CLARIFY:
            return await self._clarify(list(decision.topics), language, result)
        if kind is ReplyKind.HANDOFF:
            return self._handoff(language, decision.intent, confidence, say(language, "handoff"), result)
        text_key = {
            ReplyKind.SMALLTALK: decision.intent,
            ReplyKind.CASE_STATUS: "case_status",
            ReplyKind.OUT_OF_SCOPE: "out_of_scope",
            ReplyKind.FALLBACK: "fallback",
        }[kind]
        return self._base(kind, language, decision.intent, confidence, say(language, text_key), result)

    async def _answer(self, score: IntentScore, language: str, result: NluResult) -> Reply:
        assert score.topic_id is not None
        article = await self.articles(score.topic_id, language)
        if article is None:
            return self._handoff(
                language, "faq", score.confidence, say(language, "article_missing"), result, score.topic_id
            )
        if article.expired(self.today()):
            assert article.valid_until is not None
            return replace(
                self._handoff(
                    language,
                    "faq",
                    score.confidence,
                    say(language, "article_expired", valid_until=article.valid_until.strftime("%d.%m.%Y")),
                    result,
                    score.topic_id,
                ),
                kind=ReplyKind.OUTDATED,
                title=article.title,
                valid_until=article.valid_until,
            )
        return replace(
            self._base(ReplyKind.ANSWER, language, "faq", score.confidence, article.short_answer, result),
            article_id=score.topic_id,
            title=article.title,
            full_answer=article.body,
            sources=article.sources,
            verified_on=article.verified_on,
            valid_until=article.valid_until,
            stale=article.stale,
            notes={
                "verified_on": say(language, "verified_on", date=article.verified_on.strftime("%d.%m.%Y")),
                "sources": say(language, "sources"),
                **({"stale": say(language, "stale_note")} if article.stale else {}),
            },
        )

    async def _clarify(self, candidates: list[IntentScore], language: str, result: NluResult) -> Reply:
        options = []
        for candidate in candidates:
            assert candidate.topic_id is not None
            article = await self.articles(candidate.topic_id, language)
            title = article.title if article else candidate.topic_id
            options.append(Option(candidate.topic_id, title, round(candidate.confidence, 4)))
        top = candidates[0]
        return replace(
            self._base(ReplyKind.CLARIFY, language, "faq", top.confidence, say(language, "clarify"), result),
            options=tuple(options),
        )

    def _base(
        self,
        kind: ReplyKind,
        language: str,
        intent: str,
        confidence: float,
        text: str,
        result: NluResult | None,
    ) -> Reply:
        return Reply(
            kind=kind,
            language=language,
            intent=intent,
            text=text,
            confidence=round(float(confidence), 4),
            engine=result.engine if result else None,
            entities=dict(result.entities) if result else {},
            contact=say(language, "contact"),
            buttons={
                key: say(language, f"button_{key}")
                for key in ("full_answer", "helpful", "not_helpful", "consultant", "language")
            },
        )

    def _handoff(
        self,
        language: str,
        intent: str,
        confidence: float,
        text: str,
        result: NluResult | None = None,
        article_id: str | None = None,
    ) -> Reply:
        return replace(
            self._base(ReplyKind.HANDOFF, language, intent, confidence, text, result),
            handoff=True,
            article_id=article_id,
        )

    async def _remember_failure(self, reply: Reply, text: str, channel: str) -> None:
        if self.record_failure is None:
            return
        kind = {
            ReplyKind.FALLBACK: FailureKind.FALLBACK,
            ReplyKind.HANDOFF: FailureKind.HANDOFF,
            ReplyKind.OUTDATED: FailureKind.HANDOFF,
        }.get(reply.kind)
        if kind is None:
            return
        try:
            await self.record_failure(kind, text, reply.language, reply.article_id, channel)
        except Exception as error:  # the backlog is for admins; the person still gets the answer
            log.warning("conversation.failure_not_recorded", extra={"error": str(error)})
