"""Conversations and their transcripts: every message in and out, in order.

The bot records what a person wrote and what it answered; consultants' replies join the same
transcript, so the web chat shows them and a ticket carries the whole story. Transcripts are personal
data: `purge_transcripts` deletes conversations silent for longer than the retention period.
Services flush and never commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.languages import Channel
from tickets.models import (
    Conversation,
    ConversationMessage,
    MessageAuthor,
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


async def record_messages(
    session: AsyncSession, conversation: Conversation, messages: list[tuple[MessageAuthor, str, str | None]]
) -> list[ConversationMessage]:
    """Add messages to the transcript in this order, in one round trip (a turn is a question and a reply)."""
    assert conversation.id is not None
    rows = [
        ConversationMessage(
            conversation_id=conversation.id,
            author=author,
            text=text.replace("\x00", "")[:MAX_MESSAGE_CHARS],  # PostgreSQL text holds no NUL
            kind=kind,
        )
        for author, text, kind in messages
    ]
    conversation.last_message_at = rows[-1].created_at
    session.add_all([*rows, conversation])
    await session.flush()
    return rows


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
