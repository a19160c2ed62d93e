"""The Reply every channel renders: Telegram as a message with buttons, the phone as speech, the API as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class ReplyKind(StrEnum):
    ANSWER = "answer"  # a published article
    CLARIFY = "clarify"  # two or three likely topics to choose from
    FALLBACK = "fallback"  # not understood: ask again, consultant offered
    OUT_OF_SCOPE = "out_of_scope"  # not the infoline's business: said honestly, consultant offered
    HANDOFF = "handoff"  # a person takes over
    SMALLTALK = "smalltalk"  # greeting, thanks, goodbye
    CASE_STATUS = "case_status"  # the person wants their own case looked up
    OUTDATED = "outdated"  # the article expired: not served as current, consultant offered
    FULL_ANSWER = "full_answer"  # the whole article, on request
    FEEDBACK = "feedback"  # thanks for a vote
    FLOW = "flow"  # a step of a multi-step dialogue (choose an office, give consent, ...)
    TICKET = "ticket"  # about the person's ticket: a message joined it, it was closed, it was rated
    LANGUAGE = "language"  # the language was switched, or the choice offered
    INFO = "info"  # help, privacy, topics: what the bot is and does
    FORGOTTEN = "forgotten"  # the person's data was erased at their request
    MEDIA = "media"  # about a file, photo, voice note, sticker... the person sent
    SUBSCRIPTION = "subscription"  # the topics the person follows: one added, one stopped, or the list


class ActionName(StrEnum):
    """What a person can press; every channel sends the chosen one back with its value."""

    CHOOSE_TOPIC = "choose_topic"  # value: a topic id
    FULL_ANSWER = "full_answer"  # value: a topic id
    HELPFUL = "helpful"  # value: a topic id
    NOT_HELPFUL = "not_helpful"  # value: a topic id
    CONSULTANT = "consultant"
    LANGUAGE = "language"  # value: pl, uk, ru or en
    CHOOSE_OFFICE = "choose_office"  # value: a PID code
    CONSENT = "consent"  # value: yes or no
    CANCEL = "cancel"
    CLOSE_TICKET = "close_ticket"  # value: the ticket number
    RATE = "rate"  # value: 1 to 5
    START = "start"  # value: the language the client suggests (e.g. Telegram's), if any
    HELP = "help"
    TOPICS = "topics"  # value: a category of topics, or none for the list of categories
    PRIVACY = "privacy"
    FORGET = "forget"  # value: "yes" to erase, none to be asked first
    CASE_STATUS = "case_status"
    SUBSCRIBE = "subscribe"  # value: a topic id ("notify me when this changes")
    UNSUBSCRIBE = "unsubscribe"  # value: a topic id
    SUBSCRIPTIONS = "subscriptions"  # the topics one follows, each with a button to stop


@dataclass(frozen=True, slots=True)
class Action:
    """One button: the action, its value, and its label in the person's language."""

    action: ActionName
    value: str | None
    label: str


StoredActions = list[dict[str, str | None]]


def actions_to_json(actions: list[Action] | tuple[Action, ...]) -> StoredActions:
    """Actions as the outbox and the transcript keep them: [{"action", "value", "label"}]."""
    return [{"action": a.action.value, "value": a.value, "label": a.label} for a in actions]


def actions_from_json(stored: StoredActions | None) -> list[Action]:
    """Stored actions back as Actions (one retired since it was stored is dropped)."""
    actions = []
    for item in stored or []:
        try:
            actions.append(
                Action(ActionName(str(item.get("action"))), item.get("value"), str(item.get("label") or ""))
            )
        except ValueError:
            continue
    return actions


@dataclass(frozen=True, slots=True)
class TicketInfo:
    """A ticket as the person sees it: its number, the point, its status, and when to expect an answer."""

    number: str
    office: str | None
    status: str
    expected_reply_by: datetime | None


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """A case as its owner is told it: the number, the stage and since when."""

    number: str
    stage: str
    stage_date: date


@dataclass(frozen=True, slots=True)
class Option:
    """A topic the person can pick when the bot is unsure."""

    topic_id: str
    title: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Reply:
    kind: ReplyKind
    language: str
    intent: str
    text: str
    confidence: float
    article_id: str | None = None
    handoff: bool = False
    title: str | None = None
    full_answer: str | None = None
    sources: tuple[str, ...] = ()
    verified_on: date | None = None
    valid_until: date | None = None
    stale: bool = False
    options: tuple[Option, ...] = ()
    engine: str | None = None
    # Captions in the person's language: "verified on" with the date, "sources", a stale warning.
    notes: dict[str, str] = field(default_factory=dict)
    # What the NLU found in the message: case_number, town (a PID code).
    entities: dict[str, str] = field(default_factory=dict)
    # Where the person can always reach a human, in their language.
    contact: str = ""
    buttons: dict[str, str] = field(default_factory=dict)
    # The buttons that make sense for this reply, in the order a channel shows them.
    actions: tuple[Action, ...] = ()
    # Set when the reply is the full text of an article (Markdown; each channel renders it its own way).
    markdown: bool = False
    ticket: TicketInfo | None = None  # the ticket this reply created or is about
    case: CaseInfo | None = None  # the person's case, when this reply tells its stage
    # What the bot waits for when it is not free text: "digits" for a number a caller keys in.
    entry: str | None = None
