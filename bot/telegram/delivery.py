"""Sending the outbox on Telegram through aiogram: within Telegram's limits (about 30 messages a second
overall, one a second per chat), honouring its `retry_after`, and marking a person who blocked the bot
so nothing more is sent to them (no retry storm)."""

from __future__ import annotations

import contextlib
import html
import logging

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiolimiter import AsyncLimiter
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.replies import actions_from_json
from bot.telegram.render import keyboard, split_message
from infoopt.core.i18n import say
from infoopt.core.languages import Channel
from tickets.conversations import find_conversation
from tickets.models import Conversation, OutboxJob, Ticket, TicketMessage
from tickets.offices import UnknownOffice, get_office
from tickets.outbox import DeliveryFailed

log = logging.getLogger(__name__)

PER_CHAT_PER_SECOND = 1.0
MAX_PER_CHAT_LIMITERS = 10_000


class TelegramDeliverer:
    """The outbox's Telegram channel."""

    channel = Channel.TELEGRAM
    transactional = False

    def __init__(self, bot: Bot, *, messages_per_second: float = 30.0) -> None:
        self.bot = bot
        self.overall = AsyncLimiter(messages_per_second, 1)
        self.chats: dict[str, AsyncLimiter] = {}

    def _chat_limiter(self, chat: str) -> AsyncLimiter:
        if chat not in self.chats and len(self.chats) >= MAX_PER_CHAT_LIMITERS:
            self.chats.clear()  # old chats' limiters are idle by now; keep memory bounded
        return self.chats.setdefault(chat, AsyncLimiter(PER_CHAT_PER_SECOND, 1))

    async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
        conversation = await find_conversation(session, Channel.TELEGRAM, job.recipient)
        if conversation is not None and conversation.blocked_at is not None:
            raise DeliveryFailed("the person blocked the bot", permanent=True)
        text = job.text if job.format == "html" else html.escape(job.text, quote=False)
        if job.ticket_message_id is not None:
            text = await self._signed(session, job, conversation, text)
        chunks = split_message(text)
        markup = keyboard(actions_from_json(job.actions))
        for number, chunk in enumerate(chunks, start=1):
            async with self.overall, self._chat_limiter(job.recipient):
                await self._send(job, chunk, markup if number == len(chunks) else None)

    async def _signed(
        self, session: AsyncSession, job: OutboxJob, conversation: Conversation | None, text: str
    ) -> str:
        """A consultant's reply says who answers: "Consultant, PID Tarnów"."""
        message = await session.get(TicketMessage, job.ticket_message_id)
        ticket = await session.get(Ticket, message.ticket_id) if message else None
        office = None
        if ticket is not None and ticket.office_code:
            with contextlib.suppress(UnknownOffice):
                office = await get_office(session, ticket.office_code)
        language = (conversation.language if conversation else None) or (ticket.language if ticket else "pl")
        if office is not None:
            header = say(language, "Consultant, information point {town}", town=office.town)
        else:
            header = say(language, "Consultant of INFO.OPT")
        return f"<b>{html.escape(header, quote=False)}</b>\n{text}"

    async def _send(self, job: OutboxJob, text: str, markup: object) -> None:
        try:
            await self.bot.send_message(chat_id=int(job.recipient), text=text, reply_markup=markup)  # type: ignore[arg-type]
        except TelegramRetryAfter as error:
            raise DeliveryFailed(
                f"Telegram asked to wait {error.retry_after} s", retry_after=error.retry_after
            ) from error
        except TelegramForbiddenError as error:
            log.info("telegram.blocked", extra={"chat": job.recipient})
            raise DeliveryFailed(f"blocked by the person: {error.message}", unreachable=True) from error
        except (TelegramServerError, TelegramNetworkError) as error:
            raise DeliveryFailed(f"Telegram unavailable: {error.message}") from error
        except TelegramBadRequest as error:
            raise DeliveryFailed(f"Telegram refused the message: {error.message}", permanent=True) from error
