"""Conversations and their transcripts: every message in and out, in order.

The bot records what a person wrote and what it answered; consultants' replies join the same
transcript, so the web chat shows them and a ticket carries the whole story. Transcripts are personal
data: `purge_transcripts` deletes conversations silent for longer than the retention period.
Services flush and never commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, delete, insert, union_all, update
from sqlalchemy import select as select_columns
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.db import DriverStatement
from infoopt.core.languages import Channel
from tickets.models import (
    Conversation,
    ConversationMessage,
    MessageAuthor,
    Subscription,
    Ticket,
    TicketAuthor,
    TicketMessage,
)

# A message longer than this is cut (people paste whole letters; the transcript keeps the start).
MAX_MESSAGE_CHARS = 8000


async def find_conversation(session: AsyncSession, channel: Channel, external_id: str) -> Conversation | None:
    return (
        await session.exec(
            select(Conversation).where(
                Conversation.channel == channel, Conversation.external_id == external_id
            )
        )
    ).first()


async def open_conversation(
    session: AsyncSession,
    channel: Channel,
    external_id: str,
    *,
    language: str | None = None,
    known: Conversation | None = None,
) -> Conversation:
    """The person's conversation on this channel (`known`, if the caller already looked it up), started
    on first contact."""
    conversation = known or await find_conversation(session, channel, external_id)
    if conversation is None:
        conversation = Conversation(channel=channel, external_id=external_id, language=language)
        session.add(conversation)
        await session.flush()
    elif language and conversation.language != language:
        conversation.language = language
        session.add(conversation)
    return conversation


async def record_message(
    session: AsyncSession,
    conversation: Conversation,
    *,
    author: MessageAuthor,
    text: str,
    kind: str | None = None,
    actions: list[dict[str, str | None]] | None = None,
) -> ConversationMessage:
    """Add one message to the transcript (with the buttons that came with it, if any)."""
    (message,) = await record_messages(session, conversation, [(author, text, kind)])
    if actions:
        message.actions = actions
        session.add(message)
        await session.flush()
    return message


def _kept(text: str) -> str:
    return text.replace("\x00", "")[:MAX_MESSAGE_CHARS]  # PostgreSQL text holds no NUL


async def record_messages(
    session: AsyncSession, conversation: Conversation, messages: list[tuple[MessageAuthor, str, str | None]]
) -> list[ConversationMessage]:
    """Add messages to the transcript in this order, in one round trip (a turn is a question and a reply)."""
    assert conversation.id is not None
    rows = [
        ConversationMessage(conversation_id=conversation.id, author=author, text=_kept(text), kind=kind)
        for author, text, kind in messages
    ]
    conversation.last_message_at = rows[-1].created_at
    session.add_all([*rows, conversation])
    await session.flush()
    return rows


@cache
def _turn_statement(messages: int) -> DriverStatement:
    """`WITH touched AS (UPDATE conversation …) INSERT INTO conversation_message … SELECT … UNION ALL …`
    for this many messages, built and compiled once with bound parameters (a multi-row `VALUES` would be
    compiled again for every turn); PostgreSQL keeps its plan."""
    table = ConversationMessage.__table__  # type: ignore[attr-defined]
    touched = (
        update(Conversation)
        .where(col(Conversation.id) == bindparam("conversation"))
        .values(
            last_message_at=bindparam("at"), language=bindparam("language_"), blocked_at=bindparam("blocked")
        )
        .returning(col(Conversation.id))
        .cte("touched")
    )
    rows = [
        select_columns(
            bindparam("conversation", type_=table.c.conversation_id.type),
            bindparam(f"author_{n}", type_=table.c.author.type),
            bindparam(f"text_{n}", type_=table.c.text.type),
            bindparam(f"kind_{n}", type_=table.c.kind.type),
            bindparam("at", type_=table.c.created_at.type),
        )
        for n in range(messages)
    ]
    return DriverStatement(
        insert(table)
        .from_select(["conversation_id", "author", "text", "kind", "created_at"], union_all(*rows))
        .add_cte(touched)
    )


async def record_turn(
    session: AsyncSession, conversation: Conversation, messages: list[tuple[MessageAuthor, str, str | None]]
) -> None:
    """A turn's messages added to the transcript, and the conversation's own columns (its last message,
    language, blocked mark) written with them. On PostgreSQL in one statement (the UPDATE in a WITH) past
    the ORM, when the session's `transaction` commits, after whatever else the turn wrote (see
    `DriverStatement`); elsewhere at once, as `record_messages` does. The messages are not loaded back."""
    assert conversation.id is not None
    if not DriverStatement.applies(session):
        await record_messages(session, conversation, messages)
        return
    now = utcnow()
    parameters: dict[str, object] = {
        "conversation": conversation.id,
        "at": now,
        "language_": conversation.language,
        "blocked": conversation.blocked_at,
    }
    for n, (author, text, kind) in enumerate(messages):
        parameters |= {f"author_{n}": author, f"text_{n}": _kept(text), f"kind_{n}": kind}
    # What the statement writes on the conversation, as written: nothing of it left for the session to
    # flush (a rollback expires it all again).
    set_committed_value(conversation, "last_message_at", now)
    set_committed_value(conversation, "language", parameters["language_"])
    set_committed_value(conversation, "blocked_at", parameters["blocked"])
    _turn_statement(len(messages)).write_at_commit(session, parameters)


async def messages_after(
    session: AsyncSession, conversation: Conversation, *, after_id: int = 0, limit: int = 100
) -> Sequence[ConversationMessage]:
    """The transcript after a message id, oldest first (a cursor for clients that poll)."""
    return (
        await session.exec(
            select(ConversationMessage)
            .where(
                ConversationMessage.conversation_id == conversation.id, col(ConversationMessage.id) > after_id
            )
            .order_by(col(ConversationMessage.id))
            .limit(limit)
        )
    ).all()


async def purge_transcripts(session: AsyncSession, *, silent_since: datetime) -> int:
    """Delete conversations (and their messages) with no message since `silent_since`; how many went."""
    stale = select(Conversation.id).where(col(Conversation.last_message_at) < silent_since)
    ids = list((await session.exec(stale)).all())
    if not ids:
        return 0
    await session.exec(delete(ConversationMessage).where(col(ConversationMessage.conversation_id).in_(ids)))
    await session.exec(delete(Conversation).where(col(Conversation.id).in_(ids)))
    await session.flush()
    return len(ids)


ERASED = "[erased at the person's request]"


async def erase_person(session: AsyncSession, channel: Channel, external_id: str) -> int:
    """Erase what is kept about one person on one channel: the transcript, and their own words in
    tickets (the ticket stays, for the office's records, without them). How many tickets were touched."""
    conversation = await find_conversation(session, channel, external_id)
    if conversation is None:
        return 0
    tickets = (await session.exec(select(Ticket).where(Ticket.conversation_id == conversation.id))).all()
    for ticket in tickets:
        ticket.description, ticket.contact = ERASED, None
        session.add(ticket)
        await session.exec(
            delete(TicketMessage).where(
                col(TicketMessage.ticket_id) == ticket.id, col(TicketMessage.author) == TicketAuthor.PERSON
            )
        )
    await session.exec(
        delete(ConversationMessage).where(col(ConversationMessage.conversation_id) == conversation.id)
    )
    await session.delete(conversation)
    await session.flush()
    return len(tickets)


EXPIRED = "[removed after the retention period]"


async def scrub_closed_tickets(session: AsyncSession, *, closed_before: datetime) -> int:
    """Remove the personal data of tickets closed before a moment: the description, the contact and
    every message (the person's, the consultants' and notes alike, since replies quote the person).
    What stays is what the office's statistics need: number, point, topic, channel, language, times,
    rating. How many tickets were scrubbed."""
    tickets = (
        await session.exec(
            select(Ticket)
            .where(col(Ticket.closed_at) < closed_before)
            .where(col(Ticket.description) != EXPIRED)
        )
    ).all()
    ids = [ticket.id for ticket in tickets if ticket.id is not None]
    if not ids:
        return 0
    for ticket in tickets:
        ticket.description, ticket.contact, ticket.conversation_id = EXPIRED, None, None
        session.add(ticket)
    await session.exec(delete(TicketMessage).where(col(TicketMessage.ticket_id).in_(ids)))
    await session.flush()
    return len(ids)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def export_person(session: AsyncSession, conversation: Conversation) -> dict[str, object]:
    """Everything kept about the person behind a conversation, as they could ask for it (GDPR art. 15):
    the conversation, its messages, their tickets with every message a consultant sent them, and the
    topics they asked to be told about when they change."""
    messages = (
        await session.exec(
            select(ConversationMessage)
            .where(ConversationMessage.conversation_id == conversation.id)
            .order_by(col(ConversationMessage.id))
        )
    ).all()
    tickets = (
        await session.exec(
            select(Ticket).where(Ticket.conversation_id == conversation.id).order_by(col(Ticket.id))
        )
    ).all()
    subscriptions = (
        await session.exec(
            select(Subscription)
            .where(Subscription.channel == conversation.channel)
            .where(Subscription.recipient == conversation.external_id)
            .order_by(col(Subscription.id))
        )
    ).all()
    exported_tickets = []
    for ticket in tickets:
        thread = (
            await session.exec(
                select(TicketMessage)
                .where(TicketMessage.ticket_id == ticket.id)
                .where(col(TicketMessage.author) != TicketAuthor.NOTE)  # staff's internal notes
                .order_by(col(TicketMessage.id))
            )
        ).all()
        exported_tickets.append(
            {
                "number": ticket.number,
                "office": ticket.office_code,
                "status": ticket.status.value,
                "topic": ticket.topic_id,
                "language": ticket.language,
                "description": ticket.description,
                "contact": ticket.contact,
                "created_at": _when(ticket.created_at),
                "resolved_at": _when(ticket.resolved_at),
                "closed_at": _when(ticket.closed_at),
                "rating": ticket.rating,
                "messages": [
                    {
                        "author": message.author.value,
                        "text": message.text,
                        "file": (message.attachment or {}).get("name"),
                        "created_at": _when(message.created_at),
                    }
                    for message in thread
                ],
            }
        )
    return {
        "channel": conversation.channel.value,
        "person": conversation.external_id,
        "language": conversation.language,
        "created_at": _when(conversation.created_at),
        "last_message_at": _when(conversation.last_message_at),
        "blocked_at": _when(conversation.blocked_at),
        "messages": [
            {"author": message.author.value, "text": message.text, "created_at": _when(message.created_at)}
            for message in messages
        ],
        "tickets": exported_tickets,
        "subscriptions": [
            {
                "topic": subscription.topic_id,
                "language": subscription.language,
                "active": subscription.active,
                "since": _when(subscription.created_at),
            }
            for subscription in subscriptions
        ],
    }
