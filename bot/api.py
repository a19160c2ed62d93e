"""The bot over HTTP: `POST /api/v1/ask`, answer feedback, and the web chat page."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.conversation import MAX_TEXT, Conversation
from bot.locales import say
from bot.replies import Reply, ReplyKind
from infoopt.core.deps import get_services
from infoopt.core.errors import DomainError
from infoopt.core.languages import Language
from infoopt.core.limits import within_rate
from infoopt.core.web import templates
from knowledge_base.models import FailureKind
from knowledge_base.topics import catalogue

log = logging.getLogger(__name__)

api = APIRouter(prefix="/api/v1", tags=["bot"])
pages = APIRouter(include_in_schema=False)


def get_conversation(request: Request) -> Conversation:
    conversation: Conversation = get_services(request).conversation
    return conversation


ConversationDep = Annotated[Conversation, Depends(get_conversation)]


class AskRequest(BaseModel):
    """One message from a person."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(max_length=MAX_TEXT, description="what the person wrote")
    language: Language | None = Field(
        default=None, description="the person's chosen language; null to detect"
    )
    session_id: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="keeps the conversation's language and context between messages",
    )
    action: Literal["consultant"] | None = Field(
        default=None, description="a button the person pressed: `consultant` hands over at once"
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("write a question: the text is empty")
        if "\x00" in value:
            raise ValueError("the text contains a NUL character")
        return value


class OptionOut(BaseModel):
    topic_id: str
    title: str
    confidence: float


class AskResponse(BaseModel):
    """The bot's reply, with everything a channel needs to render it."""

    language: Language
    intent: str = Field(description="`faq` for an article, else a conversation intent or `nlu_fallback`")
    article_id: str | None
    confidence: float
    answer: str = Field(description="the text to show or say first")
    handoff: bool = Field(description="the reply hands the person over to a human")
    sources: list[str]
    kind: str
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


def ask_response(reply: Reply) -> AskResponse:
    return AskResponse(
        language=reply.language,
        intent=reply.intent,
        article_id=reply.article_id,
        confidence=reply.confidence,
        answer=reply.text,
        handoff=reply.handoff,
        sources=list(reply.sources),
        kind=reply.kind.value,
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
    )


def _apology(language: str | None) -> AskResponse:
    """When something inside broke: never a 500 for the person, always the way to a human."""
    lang = language or "pl"
    return AskResponse(
        language=lang,
        intent="nlu_fallback",
        article_id=None,
        confidence=0.0,
        answer=say(lang, "handoff"),
        handoff=True,
        sources=[],
        kind=ReplyKind.HANDOFF.value,
        contact=say(lang, "contact"),
        buttons={},
    )


class TooManyQuestions(DomainError):
    status_code = 429
    code = "too_many_requests"


@api.post(
    "/ask",
    response_model=AskResponse,
    responses={
        422: {"description": "malformed question"},
        429: {"description": "too many questions a minute"},
    },
)
async def ask(question: AskRequest, conversation: ConversationDep, request: Request) -> AskResponse:
    """Answer one question from the published knowledge base, or hand over to a person."""
    client = question.session_id or (request.client.host if request.client else "unknown")
    limit = request.app.state.settings.ask_limit_per_minute
    if not await within_rate(conversation.redis, f"ask:{client}", limit=limit, window_seconds=60):
        lang = question.language or "pl"
        raise TooManyQuestions(f"{say(lang, 'too_many')} {say(lang, 'contact')}")
    try:
        if question.action == "consultant":
            reply = await conversation.hand_over(
                question.text, language=question.language, session_id=question.session_id, channel="api"
            )
        else:
            reply = await conversation.reply(
                question.text, language=question.language, session_id=question.session_id, channel="api"
            )
    except Exception:
        log.exception("ask.failed")
        return _apology(question.language)
    return ask_response(reply)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    question: str = Field(min_length=1, max_length=MAX_TEXT)
    article_id: str = Field(max_length=64)
    language: Language
    helpful: bool
    session_id: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")

    @field_validator("article_id")
    @classmethod
    def _known_topic(cls, value: str) -> str:
        if catalogue().topic(value) is None:
            raise ValueError(f"unknown topic {value!r}")
        return value


class FeedbackResponse(BaseModel):
    answer: str
    handoff_offered: bool


@api.post("/feedback", response_model=FeedbackResponse)
async def feedback(vote: FeedbackRequest, conversation: ConversationDep) -> FeedbackResponse:
    """A "helpful" / "not helpful" vote on an answer; "not helpful" goes to the admins' backlog."""
    if vote.helpful:
        return FeedbackResponse(answer=say(vote.language, "thanks_for_feedback"), handoff_offered=False)
    if conversation.record_failure is not None:
        await conversation.record_failure(
            FailureKind.NOT_HELPFUL, vote.question, vote.language, vote.article_id, "api"
        )
    return FeedbackResponse(answer=say(vote.language, "sorry_not_helpful"), handoff_offered=True)


@pages.get("/chat", response_class=HTMLResponse)
async def chat_page(request: Request) -> Response:
    """A web chat to try the bot without Telegram: the same replies and buttons as the channels."""
    return templates.TemplateResponse(request, "chat.html", {})
