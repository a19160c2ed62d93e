"""Tables of the ticket desk. The PID points come first: their hours drive every SLA clock."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, Text, UniqueConstraint, text
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
    # Tickets of this point are numbered PREFIX-YEAR-NNNNNN; points may share a prefix (one counter).
    ticket_prefix: str = Field(default="OPT", max_length=8)
    # The first answer is due within this many opening hours of the point.
    sla_hours: int = Field(default=8, ge=1, le=200)
    # Where the voice line transfers callers during opening hours (E.164, e.g. +48122102020); none: callback.
    phone: str | None = Field(default=None, max_length=32)


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
    # The channel refused delivery for good (a Telegram user who blocked the bot): nothing more is sent.
    blocked_at: datetime | None = None


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
    # Buttons that came with the message, as [{"action", "value", "label"}] (e.g. a rating after a ticket).
    actions: list[dict[str, str | None]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow)


class TicketStatus(StrEnum):
    NEW = "new"  # nobody has it yet
    OPEN = "open"  # a consultant holds it
    WAITING = "waiting"  # answered; waiting for the person
    RESOLVED = "resolved"  # done; a message from the person within 7 days reopens it
    CLOSED = "closed"  # done for good


ACTIVE_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.WAITING)


class TicketPriority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"  # e.g. a caller waiting for a call back


class Ticket(SQLModel, table=True):
    """What the bot could not answer, for a person at a PID point."""

    __tablename__ = "ticket"
    __table_args__ = (
        # The queue: a point's (or the shared queue's) tickets by status, the most urgent first.
        Index("ix_ticket_queue", "office_code", "status", "sla_due_at"),
        Index("ix_ticket_assignee_status", "assignee_id", "status"),
        # The live queue (active tickets by due time): small however many closed tickets pile up.
        Index(
            "ix_ticket_active_queue",
            "sla_due_at",
            "id",
            postgresql_where=text("status IN ('new', 'open', 'waiting')"),
            sqlite_where=text("status IN ('new', 'open', 'waiting')"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=24, unique=True)
    conversation_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("conversation.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )
    channel: Channel = Field(sa_column=Column(enum_column(Channel), nullable=False))
    language: str = Field(max_length=2)
    topic_id: str | None = Field(default=None, max_length=64)
    # None: the shared queue, for any point to take.
    office_code: str | None = Field(default=None, max_length=32, foreign_key="pid_office.code")
    status: TicketStatus = Field(sa_column=Column(enum_column(TicketStatus), nullable=False))
    priority: TicketPriority = Field(
        default=TicketPriority.NORMAL, sa_column=Column(enum_column(TicketPriority), nullable=False)
    )
    assignee_id: int | None = Field(default=None, foreign_key="staff_user.id")
    description: str = Field(sa_column=Column(Text, nullable=False))
    # How to reach the person outside the channel, e.g. the caller's number for a call back.
    contact: str | None = Field(default=None, max_length=64)
    sla_due_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    rating: int | None = Field(default=None, ge=1, le=5)


class TicketAuthor(StrEnum):
    PERSON = "person"
    CONSULTANT = "consultant"
    NOTE = "note"  # an internal note: consultants only, never sent
    BOT = "bot"


class Delivery(StrEnum):
    """How far a message to the person has got."""

    NONE = "none"  # not for delivery (the person's own messages, notes)
    PENDING = "pending"  # waiting for the worker (or for a retry)
    SENT = "sent"
    FAILED = "failed"  # gave up after retries; a consultant can send it again
    UNCONFIRMED = "unconfirmed"  # a worker stopped mid-delivery: it may or may not have arrived


class TicketMessage(SQLModel, table=True):
    __tablename__ = "ticket_message"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(
        sa_column=Column(Integer, ForeignKey("ticket.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    author: TicketAuthor = Field(sa_column=Column(enum_column(TicketAuthor), nullable=False))
    staff_user_id: int | None = Field(default=None, foreign_key="staff_user.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    delivery: Delivery = Field(default=Delivery.NONE, sa_column=Column(enum_column(Delivery), nullable=False))
    delivery_error: str | None = Field(default=None, max_length=300)
    # A file the person sent, as the channel keeps it: {"kind", "file_id", "name", "size", "mime"}.
    attachment: dict[str, str | int | None] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow)


class TicketEvent(SQLModel, table=True):
    """Every change to a ticket: who did what, when, and the details (an audit trail per ticket)."""

    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(
        sa_column=Column(Integer, ForeignKey("ticket.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    kind: str = Field(max_length=32)
    actor: str = Field(max_length=64)  # a staff username, "person" or "system"
    detail: dict[str, str | int | None] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class TicketCounter(SQLModel, table=True):
    """The last number given per prefix and year; incremented atomically, so numbers never repeat."""

    __tablename__ = "ticket_counter"

    prefix: str = Field(max_length=8, primary_key=True)
    year: int = Field(primary_key=True)
    value: int = 0


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # a worker holds it until `lease_until`
    SENT = "sent"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"


class OutboxJob(SQLModel, table=True):
    """A message to deliver, stored in the same transaction as what it delivers."""

    __tablename__ = "outbox_job"
    __table_args__ = (
        Index("ix_outbox_job_due", "status", "next_attempt_at"),
        # A change is announced to each person once, however often its broadcast is resumed.
        Index("ux_outbox_job_change", "change_id", "channel", "recipient", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = Field(sa_column=Column(enum_column(Channel), nullable=False))
    # The channel's id for the person (web session id, Telegram chat id, phone number).
    recipient: str = Field(max_length=128)
    text: str = Field(sa_column=Column(Text, nullable=False))
    # "text": plain, each channel escapes it; "html": already rendered for the channel (Telegram's subset).
    format: str = Field(default="text", max_length=8)
    # Buttons, as [{"action", "value", "label"}]; each channel renders them its own way.
    actions: list[dict[str, str | None]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    ticket_message_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("ticket_message.id", ondelete="SET NULL"), nullable=True),
    )
    # The knowledge base's topic change this job announces to a subscriber (topic_change.id), if any.
    change_id: int | None = None
    status: OutboxStatus = Field(
        default=OutboxStatus.PENDING, sa_column=Column(enum_column(OutboxStatus), nullable=False)
    )
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class CallOutcome(StrEnum):
    BOT = "bot"  # answered by the bot
    TRANSFERRED = "transferred"  # put through to a PID point
    CALLBACK = "callback"  # a callback ticket was left
    ABANDONED = "abandoned"  # hung up before any answer


class VoiceCall(SQLModel, table=True):
    """One call to the voice line, as Twilio's status callback reported it (the caller's number masked)."""

    __tablename__ = "voice_call"

    id: int | None = Field(default=None, primary_key=True)
    call_sid: str = Field(max_length=64, unique=True)
    caller: str = Field(max_length=16)  # masked: country code and last three digits
    language: str | None = Field(default=None, max_length=2)
    outcome: CallOutcome = Field(sa_column=Column(enum_column(CallOutcome), nullable=False))
    status: str = Field(max_length=20)
    duration_seconds: int = 0
    ticket_number: str | None = Field(default=None, max_length=24)
    ended_at: datetime = Field(default_factory=utcnow, index=True)


class Subscription(SQLModel, table=True):
    """A person asked to hear when the answer on a topic changes ("notify me when this changes")."""

    __tablename__ = "subscription"
    __table_args__ = (
        UniqueConstraint("channel", "recipient", "topic_id", name="uq_subscription_person_topic"),
        Index("ix_subscription_topic_active", "topic_id", "active"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: Channel = Field(sa_column=Column(enum_column(Channel), nullable=False))
    recipient: str = Field(max_length=128)  # the channel's id for the person, as in outbox_job
    topic_id: str = Field(max_length=64)
    language: str = Field(max_length=8)  # the language the person is written to in
    active: bool = True  # False: the person blocked the bot (deleted after a while; stopping deletes it)
    created_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
