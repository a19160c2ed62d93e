"""The channel-neutral conversation: a person and an event (text or a chosen action) in, a Reply out.

Language (chosen beats detected) → NLU → one of: an answer from the published article, a
clarification with the likeliest topics, an honest "not my business" with the way to a person, or
the way to a person itself (the consultant flow). Actions the person chooses (a topic, the full
answer, a vote, a language, a step of a flow) come through here too. Every channel (the ask API and
web chat, Telegram, the phone) only reads input and renders the Reply; every message in and out is
kept in the conversation's transcript. The caller owns the database transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts import NOTICE_FOR, change_notice
from bot.flows import Event, Flow, FlowContext, Outcome, consultant_action
from bot.flows import case_status as case_flow
from bot.flows.case_status import CASE_STATUS
from bot.flows.handoff import CONSULTANT, start_fields, ticket_info
from bot.metrics import count_turn
from bot.nlu.engine import IntentScore, NluEngine, NluResult, NluUnavailable
from bot.nlu.language import LanguageDetector
from bot.replies import Action, ActionName, Option, Reply, ReplyKind
from bot.state import PersonRef, PersonState, StateStore
from bot.text import clean_text, has_content
from cases.lookup import CaseDesk
from infoopt.core.clock import utcnow
from infoopt.core.errors import NotFound
from infoopt.core.i18n import N_, say
from infoopt.core.languages import LANGUAGES, Channel
from knowledge_base.backlog import record_failure
from knowledge_base.models import FailureKind
from knowledge_base.service import PublishedArticle
from knowledge_base.topics import catalogue
from tickets.conversations import erase_person, open_conversation, record_turn
from tickets.live import TicketFeed
from tickets.models import Conversation as Transcript
from tickets.models import MessageAuthor, Ticket, TicketStatus
from tickets.service import (
    add_person_message,
    close_by_person,
    conversation_in_play,
    rate_ticket,
    ticket_of_conversation,
    ticket_to_rate,
)
from tickets.subscriptions import (
    SUBSCRIBABLE,
    TooManySubscriptions,
    forget_subscriptions,
    subscribe,
    topics_of,
    unsubscribe,
)

log = logging.getLogger(__name__)

MAX_TEXT = 2000
SMALLTALK = ("greet", "goodbye", "thanks")
# Topics about the state of one's case: with a case number in the message, the case is looked up.
CASE_TOPICS = frozenset({"case_status", "processing_time_delay"})
FLOWS: dict[str, Flow] = {CONSULTANT.name: CONSULTANT, CASE_STATUS.name: CASE_STATUS}


class ArticleLookup(Protocol):
    """The served article of a topic in a language (or None); read on `session` if it must be read."""

    def __call__(
        self, topic_id: str, language: str, session: AsyncSession | None = None
    ) -> Awaitable[PublishedArticle | None]: ...


class InvalidAction(NotFound):
    """An action's value names nothing the infoline has: an unknown topic, a language it does not speak."""

    code = "unknown_value"


# Rasa's thresholds (answer, margin, floor), chosen on the same development sets by the same kind of rule
# with Rasa's rankings (benchmarks/decision_policy.py --engine rasa, results/decision_policy_rasa.md):
# with the embedded engine's, Rasa answered 7.3 % of the Ukrainian hard messages wrong (now 2.4 %). Its
# confidences are sharper (the runner-up rarely comes close), so the margin hardly matters. Held out:
# 84.6 % answered right, 2.1 % wrong, 1.8 % not understood (88.7 %, 3.5 %, 1.8 % with the shared
# thresholds): the difference is asked back, with the right topic among the choices.
ENGINE_THRESHOLDS: tuple[tuple[str, float, float, float], ...] = (("rasa", 0.7, 0.1, 0.25),)


@dataclass(frozen=True, slots=True)
class DecisionPolicy:
    """When to answer, when to ask back, when to give up. Tuned per engine and channel.

    Chosen on the development sets (hard messages, phone speech, dev_nlu.yml) with the embedded engine:
    of the settings giving no more wrong answers there than the old policy did, the one answering the
    most hard messages right in the worst language; then checked on the held-out set
    (benchmarks/results/hard_nlu.md). Held out: 89% answered right, 8% asked back with the right topic
    among the choices, 1.0% answered wrong.
    """

    answer: float = 0.45  # the top topic's confidence needed to answer outright
    margin: float = 0.325  # ...and its lead over the runner-up
    floor: float = 0.25  # below this nothing is understood
    misses_before_handoff: int = 2  # consecutive misunderstandings before a person takes over
    # Topics offered when asking back: buttons in a chat; on the phone one yes/no confirmation of the
    # likeliest topic ("Do you mean the residence card?"), since listening to three costs a caller more.
    choices: int = 3
    # Another engine's own (answer, margin, floor): its confidences are scaled its own way.
    engines: tuple[tuple[str, float, float, float], ...] = ENGINE_THRESHOLDS

    def for_channel(self, channel: str) -> DecisionPolicy:
        """This policy on a channel: the phone confirms one topic, the others offer up to three."""
        return replace(self, choices=1) if channel == Channel.VOICE else self

    def for_engine(self, engine: str) -> DecisionPolicy:
        """This policy for a ranking made by `engine`: its own thresholds, if it has some."""
        for name, answer, margin, floor in self.engines:
            if name == engine:
                return replace(self, answer=answer, margin=margin, floor=floor)
        return self


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
        if best.name in SMALLTALK and not _question_after_greeting(result, policy):
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
    candidates = [score for score in topics if score.confidence >= policy.floor / 2][: policy.choices]
    if candidates and candidates[0].confidence >= policy.floor:
        if len(candidates) == 1 and policy.choices > 1:  # a lone candidate, not a phone's confirmation
            if candidates[0].confidence >= policy.answer:
                return Decision(ReplyKind.ANSWER, "faq", candidates[0].confidence, (candidates[0],))
            candidates = topics[:2]
        return Decision(ReplyKind.CLARIFY, "faq", candidates[0].confidence, tuple(candidates))
    if best.name == "out_of_scope":
        return Decision(ReplyKind.OUT_OF_SCOPE, "out_of_scope", best.confidence)
    return Decision(ReplyKind.FALLBACK, "nlu_fallback", best.confidence)


# A message this long is a question even when it opens with a greeting ("halo, dzień dobry, I wanted
# to ask…"), as callers' speech does: it is answered as a question when a topic is in the running.
GREETING_WORDS_AT_MOST = 5


def _question_after_greeting(result: NluResult, policy: DecisionPolicy) -> bool:
    if len(result.text.split()) <= GREETING_WORDS_AT_MOST:
        return False
    return any(score.topic_id and score.confidence >= policy.floor for score in result.ranking)


def _asks_about_own_case(result: NluResult, policy: DecisionPolicy) -> bool:
    """Whether "check my case" is one of the two likeliest readings: the person means their own case."""
    return any(
        score.name == "check_case_status" and score.confidence >= policy.floor for score in result.ranking[:2]
    )


class Conversation:
    """Handles one event at a time per person; all long-lived parts are injected."""

    def __init__(
        self,
        *,
        nlu: NluEngine,
        detector: LanguageDetector,
        articles: ArticleLookup,
        states: StateStore,
        policy: DecisionPolicy | None = None,
        now: Callable[[], datetime] = utcnow,
        feed: TicketFeed | None = None,
        cases: CaseDesk | None = None,
        change_notice: timedelta = NOTICE_FOR,
    ) -> None:
        self.change_notice = change_notice  # how long answers say "changed on …" after a marked change
        self.feed = feed
        self.cases = cases
        self.nlu = nlu
        self.detector = detector
        self.articles = articles
        self.states = states
        self.policy = policy or DecisionPolicy()
        self.now = now

    # --- the turn ------------------------------------------------------------------------------

    async def handle(self, session: AsyncSession, person: PersonRef, event: Event) -> Reply:
        """The bot's reply to one event; the person's message and the reply join the transcript."""
        if event.language is not None and event.language not in LANGUAGES:
            raise InvalidAction(f"unknown language {event.language!r}; use one of {', '.join(LANGUAGES)}")
        text = clean_text(event.text)[:MAX_TEXT]
        event = replace(event, text=text)
        async with self.states.turn(person) as state:
            language = self.choose_language(text, event.language, state, event.client_language)
            if event.language in LANGUAGES:
                state.chosen_language = True
            state.language = language
            # The NLU reads a question before the database is touched, so a turn holds its connection
            # only for its own reads and writes, not for the NLU's time.
            ahead = await self._parse_ahead(event, state)
            # A new conversation is written only after the reply is worked out: the first question then
            # holds no write lock, which on SQLite would make everyone else wait.
            now = self.now()
            conversation, ticket_id = await conversation_in_play(session, person.channel, person.id, now=now)
            if conversation is None and (event.action is not None or state.flow is not None):
                conversation = await open_conversation(session, person.channel, person.id, language=language)
            private_step = _private_step(state)
            reply = await self._turn(
                session, person, state, event, language, conversation, ahead, now=now, ticket_id=ticket_id
            )
            count_turn(person.channel, event, reply)
            if reply.kind is ReplyKind.FORGOTTEN:  # nothing of this conversation is kept, this turn included
                fresh = PersonState(language=state.language, chosen_language=state.chosen_language)
                for name in ("misses", "last_topic", "last_question", "voted", "flow"):
                    setattr(state, name, getattr(fresh, name))
                return reply
            said = _action_text(event) if event.action and not text else text
            if private_step is not None and reply.kind is ReplyKind.CASE_STATUS and not event.action:
                said = f"[{private_step}]"  # a date of birth is not kept in the transcript
            conversation = await open_conversation(
                session, person.channel, person.id, language=language, known=conversation
            )
            if conversation.blocked_at is not None:  # they wrote: they have not blocked the bot (any more)
                conversation.blocked_at = None  # written with the transcript, below
            await record_turn(
                session,
                conversation,
                [
                    (MessageAuthor.PERSON, said, event.action.value if event.action else "text"),
                    (MessageAuthor.BOT, reply.text, reply.kind.value),
                ],
            )
            if event.action in (None, ActionName.CONSULTANT):  # a flow's later steps are not new failures
                await self._remember_failure(session, reply, text or state.last_question or "", person)
            return reply

    def choose_language(
        self, text: str, requested: str | None, state: PersonState, client: str | None = None
    ) -> str:
        """A language the person chose wins; otherwise a confident detection; otherwise what we used
        before; otherwise the language of the person's app (Telegram's), or Polish."""
        if requested in LANGUAGES:
            assert requested is not None
            return requested
        if state.chosen_language and state.language:
            return state.language
        known = state.language or (client if client in LANGUAGES else None)
        if not text:
            return known or "pl"
        detection = self.detector.detect(text)
        if detection.confidence < 0.6 and known:
            return known
        return detection.language

    async def _parse_ahead(self, event: Event, state: PersonState) -> NluResult | NluUnavailable | None:
        """The NLU's reading of a plain question (no button, file or flow step), or why there is none."""
        if event.action or event.media or state.flow is not None or not has_content(event.text):
            return None
        try:
            return await self.nlu.parse(event.text)
        except NluUnavailable as error:
            return error

    async def _confident_topic(self, text: str) -> str | None:
        """The topic the NLU would answer this text with outright, or None."""
        try:
            result = await self.nlu.parse(text)
        except NluUnavailable:
            return None
        decision = decide(result, self.policy.for_engine(result.engine))
        return decision.topics[0].topic_id if decision.kind is ReplyKind.ANSWER else None

    def _announcer(self, session: AsyncSession) -> Callable[[Ticket, str], None]:
        def announce(ticket: Ticket, kind: str) -> None:
            if self.feed is not None:
                self.feed.announce(session, ticket, kind)

        return announce

    async def _turn(
        self,
        session: AsyncSession,
        person: PersonRef,
        state: PersonState,
        event: Event,
        language: str,
        conversation: Transcript | None,
        ahead: NluResult | NluUnavailable | None = None,
        *,
        now: datetime,
        ticket_id: int | None = None,
    ) -> Reply:
        """`ticket_id`: the person's ticket still in play, found with their conversation."""
        context = FlowContext(
            session,
            person,
            state,
            language,
            now,
            conversation=conversation,
            topic_id=state.last_topic,
            on_ticket=self._announcer(session),
            classify=self._confident_topic,
            contact=event.contact,
            origin=event.origin,
            cases=self.cases,
        )
        if event.media is not None:
            return await self._media(context, event)
        if event.action is not None:
            return await self._action(context, event)
        if state.flow is None and ticket_id is not None:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is not None:
                return await self._join_ticket(context, ticket, event.text)
        if state.flow is not None:
            flow = FLOWS.get(state.flow.name)
            outcome = await flow.handle(context, event) if flow else None
            if outcome is not None:
                assert flow is not None
                return self._flow_reply(language, outcome, flow=flow.name)
            state.flow = None  # a new question instead of an answer to the step: leave the flow
        return await self._understand(context, event.text, ahead)

    async def _action(self, context: FlowContext, event: Event) -> Reply:
        state, language, value = context.state, context.language, event.value
        match event.action:
            case ActionName.LANGUAGE if value is None:
                return replace(
                    self._base(
                        ReplyKind.LANGUAGE, language, "language", 1.0, say(language, "Choose your language:")
                    ),
                    actions=language_actions(language),
                )
            case ActionName.START:
                if value in LANGUAGES and not state.chosen_language:
                    assert value is not None
                    state.language = language = value
                return replace(
                    self._base(
                        ReplyKind.SMALLTALK,
                        language,
                        "greet",
                        1.0,
                        say(language, SMALLTALK_TEXTS["greet"])
                        + "\n\n"
                        + say(language, "Choose your language:"),
                    ),
                    actions=language_actions(language),
                )
            case ActionName.HELP:
                return self._info(language, HELP_TEXT, self._menu(language))
            case ActionName.PRIVACY:
                return self._info(
                    language, PRIVACY_TEXT, (Action(ActionName.FORGET, None, say(language, "Erase my data")),)
                )
            case ActionName.CASE_STATUS:
                return await self._check_case(context, "")
            case ActionName.TOPICS:
                return await self._topics(context, value)
            case ActionName.FORGET:
                return await self._forget(context, value)
            case ActionName.SUBSCRIBE:
                return await self._subscribe(context, _known_topic(value or state.last_topic))
            case ActionName.UNSUBSCRIBE:
                return await self._unsubscribe(context, _known_topic(value))
            case ActionName.SUBSCRIPTIONS:
                return await self._subscriptions(context)
            case ActionName.LANGUAGE:
                if value not in LANGUAGES:
                    raise InvalidAction(f"unknown language {value!r}; use one of {', '.join(LANGUAGES)}")
                assert value is not None
                state.language, state.chosen_language = value, True
                return self._base(
                    ReplyKind.LANGUAGE,
                    value,
                    "language",
                    1.0,
                    say(value, "I will answer in English from now on. What is your question?"),
                )
            case ActionName.CANCEL:
                state.flow = None
                return self._base(
                    ReplyKind.FLOW,
                    language,
                    "cancel",
                    1.0,
                    say(language, "Cancelled. Write your question whenever you are ready."),
                )
            case ActionName.CONSULTANT:
                return await self._hand_over(context)
            case ActionName.CLOSE_TICKET:
                return await self._close_ticket(context, value)
            case ActionName.RATE:
                return await self._rate(context, value)
            case ActionName.CHOOSE_TOPIC:
                topic_id = _known_topic(value)
                state.flow, state.misses = None, 0
                return await self._answer(IntentScore(f"faq/{topic_id}", 1.0), context, None)
            case ActionName.FULL_ANSWER:
                return await self._full_answer(context, _known_topic(value or state.last_topic))
            case ActionName.HELPFUL | ActionName.NOT_HELPFUL:
                if event.question:  # a client that keeps no conversation says what was asked
                    state.last_question = " ".join(event.question.split())[:MAX_TEXT]
                return await self._vote(
                    context, _known_topic(value or state.last_topic), event.action is ActionName.HELPFUL
                )
            case _:
                flow = FLOWS.get(state.flow.name) if state.flow else None
                outcome = await flow.handle(context, event) if flow else None
                if outcome is not None:
                    assert flow is not None
                    return self._flow_reply(language, outcome, flow=flow.name)
                # A button from an earlier message, pressed after its moment has passed.
                return replace(
                    self._base(
                        ReplyKind.FALLBACK,
                        language,
                        "nlu_fallback",
                        0.0,
                        say(
                            language,
                            "That button is no longer active. Write your question, or ask for a consultant.",
                        ),
                    ),
                    actions=(self._consultant_action(language),),
                )

    async def _understand(
        self, context: FlowContext, text: str, ahead: NluResult | NluUnavailable | None = None
    ) -> Reply:
        """The reply to a question; `ahead`: the NLU's reading of it, if it was read already."""
        state, language = context.state, context.language
        if not has_content(
            text
        ):  # only invisible characters, punctuation, emoji or markup: nothing to guess at
            return replace(
                self._base(
                    ReplyKind.FALLBACK,
                    language,
                    "nlu_fallback",
                    0.0,
                    say(language, "I see no question in your message. Write it in words, please."),
                ),
                actions=(self._consultant_action(language),),
            )
        state.last_question = text
        try:
            if isinstance(ahead, NluUnavailable):
                raise ahead
            result = ahead if ahead is not None else await self.nlu.parse(text)
        except NluUnavailable as error:
            log.error("conversation.nlu_unavailable", extra={"error": str(error)})
            return await self._hand_over(
                context, lead=say(language, "I cannot understand messages right now.")
            )
        context = replace(context, entities=dict(result.entities))
        policy = self.policy.for_engine(result.engine).for_channel(context.person.channel)
        decision = decide(result, policy)
        kind = decision.kind
        # "What is with my case (WSC-II-S…)?": look it up rather than explain how to find out.
        about_case = (
            kind in (ReplyKind.ANSWER, ReplyKind.CLARIFY) and decision.topics[0].topic_id in CASE_TOPICS
        )
        if about_case and (case_flow.start_fields(text) or _asks_about_own_case(result, policy)):
            kind = ReplyKind.CASE_STATUS
        if kind is ReplyKind.ANSWER:
            state.misses = 0
            return await self._answer(decision.topics[0], context, result)
        if kind is ReplyKind.CLARIFY:
            state.misses = 0
            return await self._clarify(list(decision.topics), language, result)
        if kind is ReplyKind.HANDOFF:
            state.misses = 0
            return await self._hand_over(context, result=result)
        if kind in (ReplyKind.FALLBACK, ReplyKind.OUT_OF_SCOPE):
            state.misses += 1
            text_out = say(language, FALLBACK_TEXTS[kind])
            if state.misses >= self.policy.misses_before_handoff:
                state.misses = 0
                return await self._hand_over(
                    context,
                    result=result,
                    lead=text_out
                    + "\n\n"
                    + say(language, "I can see I am not able to help with this. A person can."),
                )
            return replace(
                self._base(kind, language, decision.intent, decision.confidence, text_out, result),
                actions=(self._consultant_action(language),),
            )
        if kind is ReplyKind.CASE_STATUS:
            state.misses = 0
            return await self._check_case(context, text, result)
        return self._base(
            kind,
            language,
            decision.intent,
            decision.confidence,
            say(language, SMALLTALK_TEXTS[decision.intent]),
            result,
        )

    # --- replies -------------------------------------------------------------------------------

    async def _published(self, context: FlowContext, topic_id: str) -> PublishedArticle | None:
        return await self.articles(topic_id, context.language, context.session)

    async def _answer(self, score: IntentScore, context: FlowContext, result: NluResult | None) -> Reply:
        assert score.topic_id is not None
        language, topic_id = context.language, score.topic_id
        article = await self._published(context, topic_id)
        if article is None:
            return await self._hand_over(
                context,
                result=result,
                lead=say(language, "I do not have an answer on this topic in this language yet."),
                article_id=topic_id,
            )
        if article.expired(self.now().date()):
            assert article.valid_until is not None
            reply = await self._hand_over(
                context,
                result=result,
                lead=say(
                    language,
                    "The information I have on this topic is out of date (valid until {valid_until}). So as not to mislead you, please ask a consultant.",
                    valid_until=article.valid_until.strftime("%d.%m.%Y"),
                ),
                article_id=topic_id,
            )
            return replace(
                reply,
                kind=ReplyKind.OUTDATED,
                intent="faq",
                title=article.title,
                valid_until=article.valid_until,
            )
        context.state.last_topic = topic_id
        notice = change_notice(article, language, self.now(), window=self.change_notice)
        return replace(
            self._article_reply(ReplyKind.ANSWER, article, score.confidence, result, language),
            text=f"{notice}\n\n{article.short_answer}" if notice else article.short_answer,
            actions=(
                Action(ActionName.FULL_ANSWER, topic_id, say(language, "Full answer")),
                *(
                    (Action(ActionName.SUBSCRIBE, topic_id, say(language, "Notify me when this changes")),)
                    if context.person.channel in SUBSCRIBABLE
                    else ()
                ),
                *(
                    (Action(ActionName.CASE_STATUS, None, say(language, "Check my case")),)
                    if topic_id in CASE_TOPICS and self.cases is not None
                    else ()
                ),
                Action(ActionName.HELPFUL, topic_id, say(language, "Helpful")),
                Action(ActionName.NOT_HELPFUL, topic_id, say(language, "Not helpful")),
                self._consultant_action(language),
            ),
        )

    async def _full_answer(self, context: FlowContext, topic_id: str) -> Reply:
        article = await self._published(context, topic_id)
        if article is None or article.expired(self.now().date()):
            return await self._answer(IntentScore(f"faq/{topic_id}", 1.0), context, None)
        context.state.last_topic = topic_id
        language = context.language
        return replace(
            self._article_reply(ReplyKind.FULL_ANSWER, article, 1.0, None, language),
            text=article.body,
            markdown=True,
            actions=(
                Action(ActionName.HELPFUL, topic_id, say(language, "Helpful")),
                Action(ActionName.NOT_HELPFUL, topic_id, say(language, "Not helpful")),
                self._consultant_action(language),
            ),
        )

    def _article_reply(
        self,
        kind: ReplyKind,
        article: PublishedArticle,
        confidence: float,
        result: NluResult | None,
        language: str,
    ) -> Reply:
        return replace(
            self._base(kind, language, "faq", confidence, article.short_answer, result),
            article_id=article.topic_id,
            title=article.title,
            full_answer=article.body,
            sources=article.sources,
            verified_on=article.verified_on,
            valid_until=article.valid_until,
            stale=article.stale,
            notes={
                "verified_on": say(
                    language, "Checked on {date}", date=article.verified_on.strftime("%d.%m.%Y")
                ),
                "sources": say(language, "Sources"),
                **(
                    {
                        "stale": say(
                            language, "This answer is waiting to be re-checked after a change in the rules."
                        )
                    }
                    if article.stale
                    else {}
                ),
            },
        )

    async def _vote(self, context: FlowContext, topic_id: str, helpful: bool) -> Reply:
        state, language = context.state, context.language
        first_vote = topic_id not in state.voted
        if first_vote:
            state.voted = [*state.voted, topic_id][-50:]
        if not helpful and first_vote:
            # One conversation counts once per topic, however often the button is pressed.
            await record_failure(
                context.session,
                kind=FailureKind.NOT_HELPFUL,
                text=state.last_question or topic_id,
                language=language,
                topic_id=topic_id,
                channel=context.person.channel.value,
            )
        if helpful:
            return replace(
                self._base(
                    ReplyKind.FEEDBACK, language, "helpful", 1.0, say(language, "Thank you for the feedback.")
                ),
                article_id=topic_id,
            )
        return replace(
            self._base(
                ReplyKind.FEEDBACK,
                language,
                "not_helpful",
                1.0,
                say(language, "Sorry about that. You can ask differently or ask for a consultant."),
            ),
            article_id=topic_id,
            actions=(self._consultant_action(language),),
        )

    async def _clarify(self, candidates: list[IntentScore], language: str, result: NluResult) -> Reply:
        options = []
        for candidate in candidates:
            assert candidate.topic_id is not None
            article = await self.articles(candidate.topic_id, language)
            title = article.title if article else candidate.topic_id
            options.append(Option(candidate.topic_id, title, round(candidate.confidence, 4)))
        top = candidates[0]
        if len(options) == 1:  # the phone's one confirmation of the likeliest topic
            question = say(language, "Do you mean: {title}?", title=options[0].title)
        else:
            question = say(language, "I am not sure what you are asking. Choose the topic that fits best:")
        return replace(
            self._base(ReplyKind.CLARIFY, language, "faq", top.confidence, question, result),
            options=tuple(options),
            actions=(
                *(Action(ActionName.CHOOSE_TOPIC, option.topic_id, option.title) for option in options),
                self._consultant_action(language),
            ),
        )

    async def _hand_over(
        self,
        context: FlowContext,
        *,
        result: NluResult | None = None,
        lead: str | None = None,
        article_id: str | None = None,
    ) -> Reply:
        """Start the way to a person: the consultant flow's first question (or the ticket already open)."""
        open_ticket = await _ticket_in_play(context)
        if open_ticket is not None and open_ticket.status is not TicketStatus.RESOLVED:
            return replace(await self._ticket_status(context, open_ticket), handoff=True)
        asked_for_person = result is not None and result.best.name == "request_human"
        topic = (
            article_id or (result.best.topic_id if result is not None else None) or context.state.last_topic
        )
        context = replace(context, topic_id=topic)
        fields = start_fields(context, context.state.last_question, asked_for_person=asked_for_person)
        outcome = await CONSULTANT.start(context, fields)
        reply = self._flow_reply(context.language, outcome, result=result)
        return replace(
            reply,
            kind=ReplyKind.HANDOFF,
            intent="request_human" if result is None or result.best.name == "request_human" else reply.intent,
            handoff=True,
            article_id=article_id,
            text=f"{lead}\n\n{reply.text}" if lead else reply.text,
        )

    async def _check_case(self, context: FlowContext, text: str, result: NluResult | None = None) -> Reply:
        """Start the case-status lookup (with a case number the message already holds)."""
        outcome = await CASE_STATUS.start(context, case_flow.start_fields(text))
        return self._flow_reply(context.language, outcome, result=result, flow=CASE_STATUS.name)

    def _flow_reply(
        self,
        language: str,
        outcome: Outcome,
        *,
        result: NluResult | None = None,
        flow: str = CONSULTANT.name,
    ) -> Reply:
        actions = outcome.prompt.actions
        if not outcome.finished:
            actions = (*actions, Action(ActionName.CANCEL, None, say(language, "Cancel")))
        if flow == CASE_STATUS.name:
            kind, intent = ReplyKind.CASE_STATUS, "check_case_status"
        else:
            kind = ReplyKind.HANDOFF if outcome.prompt.ticket is not None else ReplyKind.FLOW
            intent = "request_human"
        return replace(
            self._base(kind, language, intent, 1.0, outcome.prompt.text, result),
            handoff=outcome.finished and outcome.prompt.ticket is not None,
            actions=actions,
            ticket=outcome.prompt.ticket,
            case=outcome.prompt.case,
            entry=outcome.prompt.entry,
        )

    # --- what the bot is and does ----------------------------------------------------------------

    def _info(self, language: str, text: str, actions: tuple[Action, ...] = ()) -> Reply:
        return replace(
            self._base(ReplyKind.INFO, language, "info", 1.0, say(language, text)), actions=actions
        )

    def _menu(self, language: str) -> tuple[Action, ...]:
        return (
            Action(ActionName.TOPICS, None, say(language, "Topics")),
            self._consultant_action(language),
            Action(ActionName.LANGUAGE, None, say(language, "Language")),
        )

    async def _topics(self, context: FlowContext, category: str | None) -> Reply:
        """The topics by category: first the categories, then a category's topics as buttons."""
        language = context.language
        groups = TOPIC_MENU
        if category is None:
            return self._info(
                language,
                CHOOSE_SUBJECT_TEXT,
                tuple(
                    Action(ActionName.TOPICS, name, say(language, CATEGORY_TITLES.get(name, name)))
                    for name in groups
                    if name in CATEGORY_TITLES
                ),
            )
        if category not in groups:
            raise InvalidAction(f"unknown category {category!r}")
        actions = []
        for topic_id in groups[category]:
            article = await self.articles(topic_id, language)
            if article is not None:
                actions.append(Action(ActionName.CHOOSE_TOPIC, topic_id, article.title))
        return self._info(
            language,
            CHOOSE_TOPIC_TEXT,
            (*actions, Action(ActionName.TOPICS, None, say(language, "All subjects"))),
        )

    async def _topic_title(self, topic_id: str, language: str) -> str:
        article = await self.articles(topic_id, language) or await self.articles(topic_id, "pl")
        return article.title if article else topic_id

    async def _subscribe(self, context: FlowContext, topic_id: str) -> Reply:
        """ "Notify me when this changes": the topic joins the person's subscriptions."""
        language, person = context.language, context.person
        title = await self._topic_title(topic_id, language)
        if person.channel not in SUBSCRIBABLE:
            return self._info(language, CANNOT_SUBSCRIBE_TEXT)
        try:
            await subscribe(context.session, person.channel, person.id, topic_id, language)
        except TooManySubscriptions:
            return replace(
                self._subscription_reply(language, say(language, TOO_MANY_SUBSCRIPTIONS_TEXT)),
                actions=(Action(ActionName.SUBSCRIPTIONS, None, say(language, "My subscriptions")),),
            )
        return replace(
            self._subscription_reply(language, say(language, SUBSCRIBED_TEXT, title=title)),
            actions=(
                Action(ActionName.UNSUBSCRIBE, topic_id, say(language, "Stop messages about this topic")),
                Action(ActionName.SUBSCRIPTIONS, None, say(language, "My subscriptions")),
            ),
        )

    async def _unsubscribe(self, context: FlowContext, topic_id: str) -> Reply:
        language, person = context.language, context.person
        title = await self._topic_title(topic_id, language)
        await unsubscribe(context.session, person.channel, person.id, topic_id)
        return replace(
            self._subscription_reply(language, say(language, UNSUBSCRIBED_TEXT, title=title)),
            actions=(Action(ActionName.SUBSCRIPTIONS, None, say(language, "My subscriptions")),),
        )

    async def _subscriptions(self, context: FlowContext) -> Reply:
        """The topics the person follows, a button to stop each."""
        language, person = context.language, context.person
        topics = await topics_of(context.session, person.channel, person.id)
        if not topics:
            return self._subscription_reply(language, say(language, NO_SUBSCRIPTIONS_TEXT))
        titles = [await self._topic_title(topic_id, language) for topic_id in topics]
        text = say(language, "You will hear from me when these answers change:") + "".join(
            f"\n• {title}" for title in titles
        )
        return replace(
            self._subscription_reply(language, text),
            actions=tuple(
                Action(ActionName.UNSUBSCRIBE, topic_id, say(language, "Stop: {title}", title=title))
                for topic_id, title in zip(topics, titles, strict=True)
            ),
        )

    def _subscription_reply(self, language: str, text: str) -> Reply:
        return self._base(ReplyKind.SUBSCRIPTION, language, "subscription", 1.0, text)

    async def _forget(self, context: FlowContext, value: str | None) -> Reply:
        """Erase what the infoline keeps about the person, after they confirm."""
        language = context.language
        if value != "yes":
            return self._info(
                language,
                FORGET_CONFIRM_TEXT,
                (
                    Action(ActionName.FORGET, "yes", say(language, "Yes, erase my data")),
                    Action(ActionName.CANCEL, None, say(language, "Cancel")),
                ),
            )
        await erase_person(context.session, context.person.channel, context.person.id)
        await forget_subscriptions(context.session, context.person.channel, context.person.id)
        context.state.flow, context.state.last_question, context.state.last_topic = None, None, None
        return self._base(ReplyKind.FORGOTTEN, language, "forget", 1.0, say(language, FORGOTTEN_TEXT))

    async def _media(self, context: FlowContext, event: Event) -> Reply:
        """A file goes to the person's open ticket; anything else that is not text gets a clear word."""
        language = context.language
        if event.media in ("photo", "document") and event.attachment is not None:
            ticket = await _ticket_in_play(context)
            if ticket is None:
                return replace(
                    self._base(
                        ReplyKind.MEDIA, language, "media", 1.0, say(language, FILE_WITHOUT_TICKET_TEXT)
                    ),
                    actions=(self._consultant_action(language),),
                )
            size = event.attachment.get("size")
            if isinstance(size, int) and size > MAX_ATTACHMENT_BYTES:
                return self._base(
                    ReplyKind.MEDIA,
                    language,
                    "media",
                    1.0,
                    say(language, FILE_TOO_LARGE_TEXT, megabytes=MAX_ATTACHMENT_BYTES // 1_000_000),
                )
            await add_person_message(
                context.session,
                ticket,
                event.text or f"[{event.media}]",
                now=context.now,
                attachment=event.attachment,
            )
            self._announcer(context.session)(ticket, "person_wrote")
            return replace(
                self._base(
                    ReplyKind.MEDIA,
                    language,
                    "media",
                    1.0,
                    say(language, FILE_ADDED_TEXT, number=ticket.number),
                ),
                ticket=ticket_info(ticket),
            )
        text = VOICE_TEXT if event.media == "voice" else ONLY_TEXT_TEXT
        return replace(
            self._base(ReplyKind.MEDIA, language, "media", 1.0, say(language, text)),
            actions=(self._consultant_action(language),),
        )

    # --- the person's ticket -------------------------------------------------------------------

    async def _ticket_status(self, context: FlowContext, ticket: Ticket) -> Reply:
        language = context.language
        return replace(
            self._base(
                ReplyKind.TICKET,
                language,
                "request_human",
                1.0,
                say(
                    language,
                    "Your request {number} is already with the consultants. Write here to add to it; the answer will come here.",
                    number=ticket.number,
                ),
            ),
            ticket=ticket_info(ticket),
            actions=(Action(ActionName.CLOSE_TICKET, ticket.number, say(language, "Close my request")),),
        )

    async def _join_ticket(self, context: FlowContext, ticket: Ticket, text: str) -> Reply:
        """While a ticket is open, what the person writes joins its thread (a late one reopens it)."""
        if not has_content(text):
            return await self._ticket_status(context, ticket)
        reopened = ticket.status is TicketStatus.RESOLVED
        await add_person_message(context.session, ticket, text, now=context.now)
        self._announcer(context.session)(ticket, "reopened" if reopened else "person_wrote")
        language = context.language
        message = TICKET_REOPENED if reopened else TICKET_MESSAGE_ADDED
        return replace(
            self._base(
                ReplyKind.TICKET, language, "request_human", 1.0, say(language, message, number=ticket.number)
            ),
            ticket=ticket_info(ticket),
            actions=(Action(ActionName.CLOSE_TICKET, ticket.number, say(language, "Close my request")),),
        )

    async def _close_ticket(self, context: FlowContext, number: str | None) -> Reply:
        language = context.language
        ticket = await _ticket_in_play(context)
        if ticket is None or ticket.number != number:
            raise InvalidAction(f"no open request {number!r} in this conversation")
        await close_by_person(context.session, ticket, now=context.now)
        self._announcer(context.session)(ticket, "closed")
        return replace(
            self._base(
                ReplyKind.TICKET,
                language,
                "request_human",
                1.0,
                say(
                    language,
                    "Request {number} is closed. How would you rate the help you got?",
                    number=ticket.number,
                ),
            ),
            ticket=ticket_info(ticket),
            actions=rating_actions(language),
        )

    async def _rate(self, context: FlowContext, value: str | None) -> Reply:
        language = context.language
        if value not in ("1", "2", "3", "4", "5"):
            raise InvalidAction(f"a rating is 1 to 5, not {value!r}")
        assert value is not None
        conversation_id = context.conversation.id if context.conversation is not None else None
        ticket = (
            await ticket_to_rate(context.session, conversation_id) if conversation_id is not None else None
        )
        if ticket is None:
            return self._base(
                ReplyKind.FEEDBACK, language, "thanks", 1.0, say(language, "Thank you for the feedback.")
            )
        await rate_ticket(context.session, ticket, int(value))
        self._announcer(context.session)(ticket, "rated")
        return replace(
            self._base(
                ReplyKind.FEEDBACK,
                language,
                "thanks",
                1.0,
                say(language, "Thank you for rating request {number}.", number=ticket.number),
            ),
            ticket=ticket_info(ticket),
        )

    def _consultant_action(self, language: str) -> Action:
        return consultant_action(language)

    def _base(
        self,
        kind: ReplyKind,
        language: str,
        intent: str,
        confidence: float,
        text: str,
        result: NluResult | None = None,
    ) -> Reply:
        return Reply(
            kind=kind,
            language=language,
            intent=intent,
            text=text,
            confidence=round(float(confidence), 4),
            engine=result.engine if result else None,
            entities=dict(result.entities) if result else {},
            contact=say(language, "INFO.OPT line: 12 210 20 20, info.opt@muw.pl"),
            buttons={
                "full_answer": say(language, "Full answer"),
                "helpful": say(language, "Helpful"),
                "not_helpful": say(language, "Not helpful"),
                "consultant": say(language, "Consultant"),
                "language": say(language, "Language"),
            },
        )

    async def _remember_failure(
        self, session: AsyncSession, reply: Reply, text: str, person: PersonRef
    ) -> None:
        """What the bot could not answer goes to the admins' backlog."""
        kind = {
            ReplyKind.FALLBACK: FailureKind.FALLBACK,
            ReplyKind.HANDOFF: FailureKind.HANDOFF,
            ReplyKind.OUTDATED: FailureKind.HANDOFF,
        }.get(reply.kind)
        if kind is None or not has_content(text):
            return
        await record_failure(
            session,
            kind=kind,
            text=text,
            language=reply.language,
            topic_id=reply.article_id,
            channel=person.channel.value,
        )


FALLBACK_TEXTS = {
    ReplyKind.FALLBACK: N_(
        "Sorry, I did not understand. Try asking in a different, short way, for example “change of employer” or “travel abroad during my case”."
    ),
    ReplyKind.OUT_OF_SCOPE: N_(
        "I cannot help with that: I only answer questions about legal stay and work of foreigners in Małopolska. If it is a matter for the Voivodeship Office, a consultant can tell you where to go."
    ),
}
SMALLTALK_TEXTS = {
    "greet": N_(
        "Hello! I am the bot of the INFO.OPT information line of the Małopolska Voivodeship Office. Ask about staying or working in Poland, for example “how much is a residence card”."
    ),
    "goodbye": N_("Goodbye! Write any time you have a question."),
    "thanks": N_("You are welcome. Can I help with anything else?"),
}
TICKET_REOPENED = N_("Your request {number} is open again; a consultant will read your message.")
TICKET_MESSAGE_ADDED = N_("Added to your request {number}. A consultant will answer here.")
CHOOSE_SUBJECT_TEXT = N_("Choose a subject:")
CHOOSE_TOPIC_TEXT = N_("Choose a topic:")
HELP_TEXT = N_(
    "I answer questions about legal stay and work of foreigners in Małopolska, day and night, in Polish, Ukrainian, Russian and English. Write your question in your own words, or choose a subject. When I cannot help, a consultant at an information point (PID) answers your request here."
)
PRIVACY_TEXT = N_(
    "What I keep: the messages of this conversation, your language, the topics you asked to be told about when they change and, if you ask for a consultant, your request. Who sees it: consultants and administrators of the Małopolska Voivodeship Office. How long: conversations are deleted after a year without messages. You can erase your data at any time."
)
FORGET_CONFIRM_TEXT = N_(
    "Erase everything the infoline keeps about this conversation: the messages, the topics you follow, and your text in any request to a consultant? This cannot be undone."
)
FORGOTTEN_TEXT = N_("Done: your data is erased. You can start again whenever you like.")
SUBSCRIBED_TEXT = N_(
    "Done. When the answer about “{title}” changes, I will write to you here. “My subscriptions” shows what you follow, and you can stop it there at any time."
)
UNSUBSCRIBED_TEXT = N_("You will no longer get messages when the answer about “{title}” changes.")
NO_SUBSCRIPTIONS_TEXT = N_(
    "You do not follow any topic. Under an answer, press “Notify me when this changes” and I will tell you when it changes."
)
TOO_MANY_SUBSCRIPTIONS_TEXT = N_(
    "You already follow as many topics as one person can. Stop one of them first under “My subscriptions”."
)
CANNOT_SUBSCRIBE_TEXT = N_(
    "I cannot write to you here later. To be told when an answer changes, ask me on Telegram or in the web chat."
)
FILE_WITHOUT_TICKET_TEXT = N_(
    "I cannot read files. If a consultant should see it, ask for a consultant first; then send the file in this chat."
)
FILE_TOO_LARGE_TEXT = N_(
    "This file is too large (the limit is {megabytes} MB). Please send a smaller one or a photo of it."
)
FILE_ADDED_TEXT = N_("The file is added to your request {number}; the consultant will see it.")
VOICE_TEXT = N_(
    "I cannot listen to voice messages yet. Please write your question, or call INFO.OPT at 12 210 20 20."
)
ONLY_TEXT_TEXT = N_("I can only read text messages. Please write your question in words.")
# The topics menu: subjects a person recognises, each with its topics (every topic in exactly one).
TOPIC_MENU: dict[str, tuple[str, ...]] = {
    "permits": (
        "temporary_residence",
        "residence_and_work",
        "family_reunification",
        "study_residence",
        "blue_card",
        "permanent_residence",
        "eu_long_term_residence",
        "visa_extension",
        "citizenship",
    ),
    "case": (
        "apply_online_mos",
        "personal_appearance_fingerprints",
        "stamp_and_legal_stay",
        "case_status",
        "processing_time_delay",
        "missing_documents_summons",
        "decision_appeal",
        "residence_card",
        "fees",
        "travel_abroad",
        "change_of_address",
    ),
    "ukraine": ("ukraine_special_status", "cukr_card", "pesel_ukr"),
    "work": (
        "work_permit_types",
        "work_permit_application",
        "work_declaration",
        "ukrainian_work_notification",
        "work_while_pending",
        "seasonal_work",
        "change_employer",
        "job_loss",
        "work_without_permit",
        "employer_obligations",
        "business_activity",
    ),
    "infoline": ("contact_offices", "document_translation_recognition"),
}
CATEGORY_TITLES = {
    "permits": N_("Residence permits"),
    "case": N_("Your application and case"),
    "ukraine": N_("Citizens of Ukraine"),
    "work": N_("Work"),
    "infoline": N_("Contact and documents"),
}
# A file a person sends to a consultant: Telegram's bots can fetch up to 20 MB.
MAX_ATTACHMENT_BYTES = 20_000_000


LANGUAGE_NAMES = {"pl": "Polski", "uk": "Українська", "ru": "Русский", "en": "English"}


def language_actions(current: str) -> tuple[Action, ...]:
    """One button per language, named in that language; the one in use is ticked."""
    return tuple(
        Action(ActionName.LANGUAGE, code, ("✓ " if code == current else "") + name)
        for code, name in LANGUAGE_NAMES.items()
    )


def _private_step(state: PersonState) -> str | None:
    """The name of the flow step waiting for an answer that stays out of the transcript, if any."""
    flow = FLOWS.get(state.flow.name) if state.flow else None
    step = flow.step(state.flow.step) if flow and state.flow else None
    return step.name if step is not None and step.private else None


async def _ticket_in_play(context: FlowContext) -> Ticket | None:
    """The person's ticket still in play (open, or resolved recently enough to reopen), if any."""
    if context.conversation is None or context.conversation.id is None:
        return None
    return await ticket_of_conversation(context.session, context.conversation.id, now=context.now)


def rating_actions(language: str) -> tuple[Action, ...]:
    """The 1–5 rating buttons (1 poor, 5 very good)."""
    labels = {
        "1": say(language, "1 – poor"),
        "2": "2",
        "3": "3",
        "4": "4",
        "5": say(language, "5 – very good"),
    }
    return tuple(Action(ActionName.RATE, value, label) for value, label in labels.items())


def _known_topic(value: str | None) -> str:
    if not value:
        raise InvalidAction("unknown topic: the action names none and no answer was given before")
    if catalogue().topic(value) is None:
        raise InvalidAction(f"unknown topic {value!r}")
    return value


def _action_text(event: Event) -> str:
    assert event.action is not None
    return f"[{event.action.value}{'=' + event.value if event.value else ''}]"
