"""Tables of the ticket desk. The PID points come first: their hours drive every SLA clock."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infoopt.core.clock import utcnow
from infoopt.core.columns import enum_column
from infoopt.core.languages import Channel

# Opening hours as {"mon": ["07:00", "18:00"], ...}; a missing weekday is closed.
WeeklyHours = dict[str, list[str]]


class PidOfficeBase(SQLModel):
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=200)
    town: str = Field(max_length=100)
    address: str = Field(max_length=200)
    # None while the office has not confirmed its hours; such an office promises no SLA.
    hours: WeeklyHours | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    # What people and staff must know before relying on this point (e.g. not confirmed since 2023).
    note: str | None = Field(default=None, max_length=500)
    active: bool = True


class PidOffice(PidOfficeBase, table=True):
    __tablename__ = "pid_office"

    id: int | None = Field(default=None, primary_key=True)
    updated_at: datetime | None = None


class PidOfficeRead(PidOfficeBase):
    id: int


class MessageAuthor(StrEnum):
    PERSON = "person"
    BOT = "bot"
    CONSULTANT = "consultant"


class Conversation(SQLModel, table=True):
    """One person on one channel: the web chat's session, a Telegram chat, a caller's number."""

    __tablename__ = "conversation"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_conversation_channel_external"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = Field(sa_column=Column(enum_column(Channel), nullable=False))
    # The channel's own id for the person: a server-issued web session id, a Telegram chat id, ...
    external_id: str = Field(max_length=128)
    language: str | None = Field(default=None, max_length=2)
    created_at: datetime = Field(default_factory=utcnow)
    # Transcripts are personal data: retention is counted from the last message.
    last_message_at: datetime = Field(default_factory=utcnow, index=True)


class ConversationMessage(SQLModel, table=True):
    """One message in or out of a conversation, in the order it happened."""

    __tablename__ = "conversation_message"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("conversation.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    author: MessageAuthor = Field(sa_column=Column(enum_column(MessageAuthor), nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    # What the message was: a reply kind (answer, clarify, ...) or the action a person chose.
    kind: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
