"""The bot over HTTP: `POST /api/v1/ask`, the conversation's messages, answer feedback, the web chat page.

The web channel's adapter: it reads the request, hands the conversation an event, and renders the
Reply as JSON (Markdown as sanitised HTML beside it). A person on the web is known by a session id the
server issues (192 random bits); it is the secret of that browser.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.accessibility import statement_url
from bot.conversation import MAX_TEXT, Conversation, InvalidAction
from bot.flows import Event
from bot.render import markdown_html, source_label, text_html
from bot.replies import ActionName, Reply, ReplyKind, actions_from_json
from bot.state import PersonRef
from infoopt.core.deps import SessionDep, client_address, get_services
from infoopt.core.errors import NotFound
from infoopt.core.i18n import N_, say
from infoopt.core.languages import Channel, Language
from infoopt.core.limits import PublicReadLimit, TooManyRequests, hit
from infoopt.core.web import templates
from tickets.conversations import find_conversation, messages_after

log = logging.getLogger(__name__)

api = APIRouter(prefix="/api/v1", tags=["bot"])
pages = APIRouter(include_in_schema=False)

SESSION_ID_PATTERN = r"^[A-Za-z0-9_\-]{16,128}$"
NO_NUL_PATTERN = r"^[^\x00]*$"


def get_conversation(request: Request) -> Conversation:
    conversation: Conversation = get_services(request).conversation
    return conversation


ConversationDep = Annotated[Conversation, Depends(get_conversation)]


def new_session_id() -> str:
    """An unguessable id for a web conversation: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


class AskRequest(BaseModel):
    """One message from a person: a text, or an action they chose from the previous reply (or both)."""

    model_config = ConfigDict(
        extra="ignore",
        # Either an action, or a text (a text with nothing to understand gets a reply saying so).
        json_schema_extra={
            "anyOf": [
                {"required": ["action"], "properties": {"action": {"type": "string"}}},
                {"required": ["text"], "properties": {"text": {"minLength": 1}}},
            ]
        },
    )

    text: str = Field(
        default="",
        max_length=MAX_TEXT,
        description="what the person wrote",
        json_schema_extra={"pattern": NO_NUL_PATTERN},  # checked below, with a clearer word than a pattern
    )

    @field_validator("text")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("the text contains a NUL character")
        return value

    language: Language | None = Field(
        default=None, description="the person's chosen language; null to detect"
    )
    session_id: str | None = Field(
        default=None,
        max_length=128,
        pattern=SESSION_ID_PATTERN,
        description="the id the server issued in an earlier reply; omit it to start a conversation",
    )
    action: ActionName | None = Field(default=None, description="an action exactly as a reply offered it")
    value: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9_\-]*$", description="the offered action's value"
    )

    @model_validator(mode="after")
    def _something_to_answer(self) -> AskRequest:
        if self.action is None and not self.text:
            raise ValueError("write a question: the text is empty")
        return self


class OptionOut(BaseModel):
    topic_id: str
    title: str
    confidence: float


class ActionOut(BaseModel):
    """A button: send `action` and `value` back to choose it; `label` is in the person's language."""

    action: ActionName
    value: str | None
    label: str


class TicketRef(BaseModel):
    """The ticket a reply created or is about."""

    number: str = Field(description="readable on the phone, e.g. TAR-2026-000123")
    office: str | None = Field(description="PID code; null for the shared queue")
    status: str
    expected_reply_by: datetime | None = Field(description="Europe/Warsaw time")


class CaseRef(BaseModel):
    number: str
    stage: str = Field(description="received, formal_check, missing_documents, fingerprints, ...")
    stage_date: date


class SourceLink(BaseModel):
    url: str
    label: str = Field(description="the site and page, short enough for a phone screen")


class AskResponse(BaseModel):
    """The bot's reply, with everything a channel needs to render it."""

    language: Language
    intent: str = Field(description="`faq` for an article, else a conversation intent or `nlu_fallback`")
    article_id: str | None
    confidence: float
    answer: str = Field(description="the text to show or say first (Markdown when `format` is markdown)")
    format: Literal["text", "markdown"] = "text"
    answer_html: str = Field(description="the answer as sanitised HTML, phone numbers and e-mails as links")
    handoff: bool = Field(description="the reply hands the person over to a human")
    sources: list[str]
    source_links: list[SourceLink] = Field(default_factory=list)
    kind: str
    session_id: str = Field(description="send it back with the next message of this conversation")
    actions: list[ActionOut] = Field(default_factory=list)
    title: str | None = None
    full_answer: str | None = None
    verified_on: date | None = None
    valid_until: date | None = None
    stale: bool = False
    options: list[OptionOut] = []
    contact: str
    buttons: dict[str, str]
    engine: str | None = None
    entities: dict[str, str] = Field(default_factory=dict, description="e.g. case_number, town (a PID code)")
    notes: dict[str, str] = Field(default_factory=dict, description="captions: verified_on, sources, stale")
    ticket: TicketRef | None = None
    case: CaseRef | None = Field(
        default=None, description="the person's case, when the answer tells its stage"
    )


def ask_response(reply: Reply, session_id: str) -> AskResponse:
    return AskResponse(
        language=Language(reply.language),
        intent=reply.intent,
        article_id=reply.article_id,
        confidence=reply.confidence,
        answer=reply.text,
        format="markdown" if reply.markdown else "text",
        answer_html=markdown_html(reply.text) if reply.markdown else text_html(reply.text),
        handoff=reply.handoff,
        sources=list(reply.sources),
        source_links=[SourceLink(url=url, label=source_label(url)) for url in reply.sources],
        kind=reply.kind.value,
        session_id=session_id,
        actions=[ActionOut(action=a.action, value=a.value, label=a.label) for a in reply.actions],
        title=reply.title,
        full_answer=reply.full_answer,
        verified_on=reply.verified_on,
        valid_until=reply.valid_until,
        stale=reply.stale,
        options=[
            OptionOut(topic_id=o.topic_id, title=o.title, confidence=o.confidence) for o in reply.options
        ],
        contact=reply.contact,
        buttons=reply.buttons,
        engine=reply.engine,
        entities=reply.entities,
        notes=reply.notes,
        ticket=TicketRef(
            number=reply.ticket.number,
            office=reply.ticket.office,
            status=reply.ticket.status,
            expected_reply_by=reply.ticket.expected_reply_by,
        )
        if reply.ticket
        else None,
        case=CaseRef(number=reply.case.number, stage=reply.case.stage, stage_date=reply.case.stage_date)
        if reply.case
        else None,
    )


def _apology(language: str | None, session_id: str) -> AskResponse:
    """When something inside broke: never a 500 for the person, always the way to a human, honestly."""
    lang = language or "pl"
    contact = say(lang, "INFO.OPT line: 12 210 20 20, info.opt@muw.pl")
    answer = say(lang, "Something went wrong on our side. Please try again in a moment, or contact a person:")
    return AskResponse(
        language=Language(lang),
        intent="nlu_fallback",
        article_id=None,
        confidence=0.0,
        answer=f"{answer} {contact}",
        answer_html=text_html(f"{answer} {contact}"),
        handoff=True,
        sources=[],
        kind=ReplyKind.HANDOFF.value,
        session_id=session_id,
        contact=contact,
        buttons={},
    )


async def _within_limits(
    request: Request, limits: list[tuple[str, int]], language: Callable[[], str]
) -> None:
    """Count the request against each (key, per-minute limit); a 429 in the person's language if over.

    The language is only worked out for a refusal: most requests are within their limits.
    """
    redis = get_services(request).redis
    for key, limit in limits:
        rate = await hit(redis, key, limit=limit, window_seconds=60)
        if not rate.allowed:
            lang = language()
            wait = say(lang, "Too many questions in a short time — please wait a minute.")
            raise TooManyRequests(
                f"{wait} {say(lang, 'INFO.OPT line: 12 210 20 20, info.opt@muw.pl')}",
                retry_after=rate.retry_after,
            )


async def _web_person(session: AsyncSession, session_id: str | None) -> PersonRef:
    """The person behind a session id the server issued; a new conversation for none or an unknown one."""
    if session_id and await find_conversation(session, Channel.WEB, session_id) is not None:
        return PersonRef(Channel.WEB, session_id)
    return PersonRef(Channel.WEB, new_session_id())


@api.post(
    "/ask",
    response_model=AskResponse,
    responses={
        404: {"description": "the action's value names nothing the infoline has (a topic, a language)"},
        422: {"description": "malformed question"},
        429: {
            "description": "too many questions a minute (per conversation, and per address); see Retry-After"
        },
    },
)
async def ask(
    question: AskRequest, conversation: ConversationDep, session: SessionDep, request: Request
) -> AskResponse:
    """Answer one message or chosen action from the published knowledge base, or show the way to a person."""
    settings = get_services(request).settings

    def language() -> str:
        if question.language:
            return question.language
        return conversation.detector.detect(question.text).language if question.text else "pl"

    limits = [(f"ask:address:{client_address(request)}", settings.ask_limit_per_address_per_minute)]
    if question.session_id:
        limits.append((f"ask:conversation:{question.session_id}", settings.ask_limit_per_minute))
    await _within_limits(request, limits, language)
    person = await _web_person(session, question.session_id)
    event = Event(
        text=question.text,
        action=question.action,
        value=question.value,
        language=question.language,
        origin=client_address(request),
    )
    try:
        async with session.begin_nested():  # a failure inside leaves the request's transaction usable
            reply = await conversation.handle(session, person, event)
    except InvalidAction:
        raise
    except Exception:
        log.exception("ask.failed")
        return _apology(question.language, person.id)
    return ask_response(reply, person.id)


class MessageOut(BaseModel):
    id: int
    author: Literal["bot", "consultant", "person"]
    text: str
    created_at: datetime
    kind: str | None = Field(
        default=None, description="what it was: a reply kind, the action chosen, ticket_reply, ticket_notice"
    )
    actions: list[ActionOut] = Field(default_factory=list, description="buttons that came with it")


class MessagesOut(BaseModel):
    items: list[MessageOut]
    cursor: str = Field(description="send it back as `after` to get only newer messages")


@api.get(
    "/conversations/{session_id}/messages",
    response_model=MessagesOut,
    dependencies=[Depends(PublicReadLimit("conversation_messages"))],
    responses={
        404: {"description": "no conversation with this session id"},
        429: {"description": "too many requests a minute from this address; see Retry-After"},
    },
)
async def conversation_messages(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    session: SessionDep,
    after: Annotated[str | None, Query(max_length=20, pattern=r"^\d*$")] = None,
) -> MessagesOut:
    """What was said in a web conversation since the cursor, consultants' replies included."""
    conversation = await find_conversation(session, Channel.WEB, session_id)
    if conversation is None:
        raise NotFound("no conversation with this session id")
    # A cursor past any message there can be is simply "nothing newer" (ids are 32-bit in the database).
    after_id = min(int(after), 2**31 - 1) if after else 0
    messages = await messages_after(session, conversation, after_id=after_id)
    cursor = str(messages[-1].id) if messages else str(after_id)
    return MessagesOut(
        items=[
            MessageOut(
                id=m.id or 0,
                author=m.author.value,
                text=m.text,
                created_at=m.created_at,
                kind=m.kind,
                actions=_known_actions(m.actions),
            )
            for m in messages
        ],
        cursor=cursor,
    )


def _known_actions(stored: list[dict[str, str | None]] | None) -> list[ActionOut]:
    return [ActionOut(action=a.action, value=a.value, label=a.label) for a in actions_from_json(stored)]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    question: str = Field(min_length=1, max_length=MAX_TEXT, pattern=NO_NUL_PATTERN)
    article_id: str = Field(max_length=64, pattern=r"^[a-z0-9_]+$", description="a topic id")
    language: Language
    helpful: bool
    session_id: str | None = Field(default=None, max_length=128, pattern=SESSION_ID_PATTERN)


class FeedbackResponse(BaseModel):
    answer: str
    handoff_offered: bool
    session_id: str


@api.post(
    "/feedback",
    response_model=FeedbackResponse,
    responses={
        404: {"description": "unknown topic"},
        429: {"description": "too many votes a minute from this address; see Retry-After"},
    },
)
async def feedback(
    vote: FeedbackRequest, conversation: ConversationDep, session: SessionDep, request: Request
) -> FeedbackResponse:
    """A "helpful" / "not helpful" vote on an answer (the same as the reply's vote actions).

    Votes from one conversation on one answer count once, however often they are sent.
    """
    settings = get_services(request).settings
    limits = [(f"feedback:address:{client_address(request)}", settings.feedback_limit_per_minute)]
    await _within_limits(request, limits, lambda: vote.language)
    person = await _web_person(session, vote.session_id)
    event = Event(
        action=ActionName.HELPFUL if vote.helpful else ActionName.NOT_HELPFUL,
        value=vote.article_id,
        language=vote.language,
        question=vote.question,
    )
    reply = await conversation.handle(session, person, event)
    return FeedbackResponse(
        answer=reply.text,
        handoff_offered=any(action.action is ActionName.CONSULTANT for action in reply.actions),
        session_id=person.id,
    )


LANGUAGE_NAMES = {"pl": "polski", "uk": "українська", "ru": "русский", "en": "English"}
CHAT_TEXTS = {
    "greeting": N_(
        "Hello! I answer questions about legal stay and work in Małopolska, day and night. Write your question "
        "in your own words, or tap an example."
    ),
    "placeholder": N_("Write your question…"),
    "send": N_("Send"),
    "language": N_("Language"),
    "automatic": N_("automatic"),
    "you": N_("You"),
    "bot": N_("Bot"),
    "consultant": N_("Consultant"),
    "examples": N_("Examples"),
    "your_data": N_("Your data"),
    "sources": N_("Sources"),
    "error": N_("Something went wrong on our side. Please try again in a moment, or contact a person:"),
    "contact": N_("INFO.OPT line: 12 210 20 20, info.opt@muw.pl"),
    "footer": N_(
        "Answers come from the knowledge base of the Małopolska Voivodeship Office. A person: INFO.OPT 12 210 20 20, info.opt@muw.pl."
    ),
    "statement": N_("Accessibility statement"),
}
CHAT_EXAMPLES = (
    N_("How much does a residence card cost?"),
    N_("Can I travel abroad while my case is pending?"),
    N_("How do I apply in MOS?"),
)


def chat_texts() -> dict[str, dict[str, object]]:
    """The chat page's own words in every language, for the page to switch without a reload."""
    return {
        language: {
            **{key: say(language, message) for key, message in CHAT_TEXTS.items()},
            "examples_list": [say(language, example) for example in CHAT_EXAMPLES],
            "footer_html": text_html(say(language, CHAT_TEXTS["footer"])),
            "statement_url": statement_url(language),
            "name": LANGUAGE_NAMES[language],
        }
        for language in LANGUAGE_NAMES
    }


@pages.get("/chat", response_class=HTMLResponse)
async def chat_page(request: Request) -> Response:
    """A web chat to try the bot without Telegram: the same replies and actions as the channels."""
    texts = chat_texts()
    return templates.TemplateResponse(
        request,
        "chat.html",
        {"texts": texts, "greetings": [texts[lang]["greeting"] for lang in LANGUAGE_NAMES]},
    )
