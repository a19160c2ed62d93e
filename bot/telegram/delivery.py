"""Sending the outbox on Telegram through aiogram: within Telegram's limits (about 30 messages a second
per bot, one a second per chat, kept by all outbox workers together), honouring its `retry_after`, and
marking a person who blocked the bot so nothing more is sent to them (no retry storm)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import Sequence
from functools import partial

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.replies import actions_from_json
from bot.telegram.render import keyboard, split_message
from infoopt.core.i18n import say
from infoopt.core.languages import Channel
from infoopt.core.pacing import SharedPace
from tickets.conversations import find_conversation
from tickets.models import OutboxJob, Ticket, TicketMessage
from tickets.offices import UnknownOffice, get_office
from tickets.outbox import DeliveryFailed, NotYet, Sending, SendLog

log = logging.getLogger(__name__)

# A job whose first moment to go out is further away than this goes back to the outbox instead of
# holding its lease (and its worker) meanwhile.
MAX_WAIT_SECONDS = 10.0


class TelegramDeliverer:
    """The outbox's Telegram channel."""

    channel = Channel.TELEGRAM
    transactional = False

    def __init__(self, bot: Bot, pace: SharedPace, send_log: SendLog | None = None) -> None:
        self.bot = bot
        self.pace = pace
        self.send_log = send_log  # which claimed jobs have not left yet, for the recovery of a dead worker

    async def prepare(self, session: AsyncSession, jobs: Sequence[OutboxJob]) -> list[Sending]:
        """Each job's messages (a consultant's reply signed, read on `session`), their moments reserved
        within the bot's limits in one go; the sendings only wait for their moments and send."""
        messages = []
        for job in jobs:
            text = job.text if job.format == "html" else html.escape(job.text, quote=False)
            if job.ticket_message_id is not None:
                text = await self._signed(session, job, text)
            messages.append(split_message(text))
        delays = await self.pace.reserve(
            [job.recipient for job, chunks in zip(jobs, messages, strict=True) for _ in chunks]
        )
        reserved_at = asyncio.get_running_loop().time()
        noted = (
            await self.send_log.claimed([job.id for job in jobs if job.id is not None])
            if self.send_log
            else set()
        )
        sendings: list[Sending] = []
        for job, chunks in zip(jobs, messages, strict=True):
            moments = [reserved_at + delay for delay in delays[: len(chunks)]]
            delays = delays[len(chunks) :]
            sendings.append(partial(self._send_all, job, chunks, moments, job.id in noted))
        return sendings

    async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
        """One job on its own: prepared and sent at once."""
        (sending,) = await self.prepare(session, [job])
        await sending()

    async def _send_all(
        self, job: OutboxJob, chunks: list[str], moments: list[float], noted: bool = False
    ) -> None:
        """The job's messages in order, each at its moment; the buttons go with the last one. A job noted
        in the send log leaves only if its note is still there (a recovery may have taken it back)."""
        loop = asyncio.get_running_loop()
        if moments and moments[0] - loop.time() > MAX_WAIT_SECONDS:
            raise NotYet(moments[0] - loop.time())
        markup = keyboard(actions_from_json(job.actions))
        for number, (chunk, moment) in enumerate(zip(chunks, moments, strict=True), start=1):
            await asyncio.sleep(max(0.0, moment - loop.time()))
            if number == 1 and noted and self.send_log and not await self.send_log.begin(job.id or 0):
                raise DeliveryFailed("taken back after this worker's lease ran out; another worker sends it")
            await self._send(job, chunk, markup if number == len(chunks) else None)

    async def _signed(self, session: AsyncSession, job: OutboxJob, text: str) -> str:
        """A consultant's reply says who answers: "Consultant, PID Tarnów"."""
        conversation = await find_conversation(session, Channel.TELEGRAM, job.recipient)
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

    async def _send(self, job: OutboxJob, text: str, markup: InlineKeyboardMarkup | None) -> None:
        try:
            await self.bot.send_message(chat_id=int(job.recipient), text=text, reply_markup=markup)
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
