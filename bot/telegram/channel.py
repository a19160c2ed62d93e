"""The Telegram channel: aiogram's Bot and Dispatcher, one turn of the conversation per update, and the
reply sent without a request of its own or written to the outbox (never sent from the handler), so a
slow or refusing Telegram never loses a reply and the webhook is acknowledged fast.

A reply that is one message, to an update that came through the webhook, rides back in the webhook's
own response when the bot's sending limits allow a message to that chat right now (Telegram runs a
method given in the response as if it had been called). That costs no request, no outbox job and no
worker; the price is that Telegram tells nobody whether it went out, which for a direct answer to
someone who has just written is acceptable: they are there, and they can ask again. Everything else (a
reply of several messages, one held back by the limits, consultants' replies, change alerts, anything
while polling) goes through the outbox, which confirms and retries.

Each update_id is handled once across every worker (a Redis key per update). Everything the person
reads comes from the channel-neutral conversation and its gettext catalogues.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.methods import SendMessage
from aiogram.methods.base import Response
from aiogram.types import BotCommand, Message, Update
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.conversation import Conversation
from bot.flows import Event
from bot.replies import Reply, actions_to_json
from bot.state import PersonRef
from bot.telegram.render import keyboard, reply_html, split_message
from infoopt.core import db
from infoopt.core.i18n import N_, say
from infoopt.core.languages import Channel
from infoopt.core.limits import hit
from infoopt.core.pacing import SharedPace
from infoopt.core.redis_store import is_in_process
from infoopt.core.settings import Settings
from tickets.live import TicketFeed
from tickets.metrics import WEBHOOK_REPLIES
from tickets.outbox import enqueue

log = logging.getLogger(__name__)

# pydantic keeps a parametrised generic model only weakly, and aiogram parametrises `Response[...]` for
# every Bot API answer it reads: after each garbage collection the next answer would build the class and
# its schema again (milliseconds). Held here, they are built once per process.
KEPT_RESPONSE_TYPES = (Response[Message], Response[bool])
# A reply goes back in the webhook's response if its moment within the bot's limits is at most this far
# away (it then goes out that much early: a burst of a few messages, which Telegram tolerates); later,
# it waits its moment in the outbox.
WEBHOOK_REPLY_EARLY_SECONDS = 0.2
UPDATE_SEEN_SECONDS = 24 * 3600  # Telegram gives up redelivering an update within a day
RATE_WINDOW_SECONDS = 60  # the person's limit is INFOOPT_ASK_LIMIT_PER_MINUTE
# KEYS[1]: the update's key; KEYS[2] (for an update from a chat): the person's rate bucket.
# Returns {-1, what the update's key holds} for an update seen before, else {the person's hits in this
# window} ({0} without a chat).
_ADMIT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return {-1, redis.call('GET', KEYS[1])} end
if #KEYS < 2 then return {0} end
local hits = redis.call('INCR', KEYS[2])
if hits == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return {hits}
"""
# What an update's key holds while (and after) it is handled without a reply in the webhook's response;
# with one, the response's JSON, so that a redelivery (the response never reached Telegram) gets it again.
UPDATE_SEEN = "1"


@dataclass(slots=True)
class WebhookReply:
    """The one Bot API call an update's webhook response may carry: the turn's reply, when it fits; or,
    for an update Telegram sent again, the response it did not get the first time (`sent`)."""

    update_id: int | None = None
    sent: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        return self.sent if self.sent is not None else {"ok": True}

    @staticmethod
    def of(method: SendMessage, bot: Bot) -> dict[str, Any]:
        """A method as a webhook response's JSON: its name and parameters, with the bot's defaults (HTML,
        no link previews) filled in as aiogram fills them for a request of its own."""
        body: dict[str, Any] = {"method": method.__api_method__}
        for key, value in method.model_dump(warnings=False).items():
            prepared = bot.session.prepare_value(value, bot=bot, files={})
            if prepared is None:
                continue
            # aiogram prepares form fields (numbers, flags and objects as JSON text): in a JSON body they
            # are the values themselves.
            if isinstance(prepared, Enum):  # the parse mode
                body[key] = prepared.value
            else:
                body[key] = prepared if isinstance(value, str) else json.loads(prepared)
        return body


@dataclass(frozen=True, slots=True)
class Admission:
    """What `TelegramChannel.admit` found: a new update? the person within their limit? For an update seen
    before, what its key holds (`earlier`: the webhook response it was answered with, if any)."""

    first_time: bool
    within_limit: bool
    earlier: str | None = None


@dataclass(frozen=True, slots=True)
class Arrival:
    """What `TelegramChannel.process` hands the handlers with an update, for its turn: whether the person is
    within their limit, and where the reply may go back in the webhook's response (None: when polling)."""

    within_limit: bool
    webhook_reply: WebhookReply | None = None


def chat_of(update: Update) -> int | None:
    """The chat an update comes from: a message's, or the message under a pressed button."""
    message = update.message or update.edited_message
    if message is not None:
        return message.chat.id
    query = update.callback_query
    if query is not None and query.message is not None:
        return query.message.chat.id
    return None


def build_bot(settings: Settings) -> Bot:
    """aiogram's Bot for the configured token, pointed at TELEGRAM_API_BASE when set."""
    assert settings.telegram.bot_token is not None
    base = settings.telegram.api_base
    session = AiohttpSession(api=TelegramAPIServer.from_base(base)) if base else AiohttpSession()
    return Bot(
        settings.telegram.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


class TelegramChannel:
    """Reads updates, turns them into events for the conversation, and queues the replies."""

    def __init__(
        self,
        *,
        bot: Bot,
        conversation: Conversation,
        sessions: Callable[[], async_sessionmaker[AsyncSession]],
        redis: Redis,
        feed: TicketFeed,
        settings: Settings,
        pace: SharedPace | None = None,
    ) -> None:
        from bot.telegram.handlers import router

        self.bot = bot
        # The bot's sending limits, shared with the outbox workers; without it every reply is queued.
        self.pace = pace
        self.reply_in_webhook = settings.telegram.reply_in_webhook and pace is not None
        self.conversation = conversation
        self._sessions = sessions  # looked up per update: tests swap in a rolled-back transaction
        self.redis = redis
        self.feed = feed
        self.settings = settings
        # No aiogram FSM: the conversation keeps its own state (bot.state), so aiogram need not read a
        # Redis key of its own for every update.
        self.dispatcher = Dispatcher(disable_fsm=True)
        self.dispatcher["channel"] = self
        self.dispatcher.include_router(router)
        self._admit = None if is_in_process(redis) else redis.register_script(_ADMIT)

    async def first_time(self, update_id: int) -> bool:
        """True the first time any worker sees this update_id (Telegram redelivers after errors)."""
        try:
            key = f"tg:update:{update_id}"
            return bool(await self.redis.set(key, UPDATE_SEEN, nx=True, ex=UPDATE_SEEN_SECONDS))
        except RedisError as error:  # better to answer twice than not at all
            log.warning("telegram.dedupe_unavailable", extra={"error": str(error)})
            return True

    async def _earlier(self, update_id: int) -> str | None:
        with contextlib.suppress(RedisError):
            held = await self.redis.get(f"tg:update:{update_id}")
            return held.decode() if isinstance(held, bytes) else held
        return None

    async def forget_update(self, update_id: int) -> None:
        """Processing failed: let Telegram's redelivery of this update through."""
        with contextlib.suppress(RedisError):
            await self.redis.delete(f"tg:update:{update_id}")

    async def admit(self, update: Update) -> Admission:
        """Whether this update is new (`first_time`) and its chat within the person's rate limit
        (`within_limit`), in one round trip to Redis."""
        chat = chat_of(update)
        if self._admit is None:  # the in-process stand-in runs Lua slowly: two plain calls cost less
            if not await self.first_time(update.update_id):
                return Admission(False, True, await self._earlier(update.update_id))
            return Admission(True, chat is None or await self.within_limit(chat))
        keys = [
            f"tg:update:{update.update_id}",
            *([f"rate:{self._rate_key(chat)}"] if chat is not None else []),
        ]
        try:
            found = await self._admit(keys=keys, args=[UPDATE_SEEN_SECONDS, RATE_WINDOW_SECONDS])
        except RedisError as error:  # better to answer twice than not at all; limits fail open
            log.warning("telegram.dedupe_unavailable", extra={"error": str(error)})
            return Admission(True, True)
        hits = int(found[0])
        if hits < 0:
            return Admission(False, True, found[1] if len(found) > 1 else None)
        return Admission(True, hits <= self.settings.ask_limit_per_minute)

    async def process(self, update: Update, webhook_reply: WebhookReply | None = None) -> bool:
        """Handle one update once; False when it was a duplicate. `webhook_reply`: where the reply may go back
        in the webhook's response (None: every reply is queued, as when polling)."""
        admission = await self.admit(update)
        if not admission.first_time:
            log.info("telegram.duplicate_update", extra={"update_id": update.update_id})
            if webhook_reply is not None and admission.earlier not in (None, UPDATE_SEEN):
                with contextlib.suppress(ValueError, TypeError):
                    webhook_reply.sent = json.loads(admission.earlier or "")
            return False
        if webhook_reply is not None:
            webhook_reply.update_id = update.update_id
        try:
            # Handlers name `arrival` to hand it to the turn.
            await self.dispatcher.feed_update(
                self.bot, update, arrival=Arrival(admission.within_limit, webhook_reply)
            )
        except BaseException:  # the update's key goes, its remembered response with it
            await self.forget_update(update.update_id)
            raise
        return True

    @staticmethod
    def _rate_key(chat_id: int) -> str:
        return f"tg:person:{chat_id}"

    async def within_limit(self, chat_id: int) -> bool:
        rate = await hit(
            self.redis,
            self._rate_key(chat_id),
            limit=self.settings.ask_limit_per_minute,
            window_seconds=RATE_WINDOW_SECONDS,
        )
        return rate.allowed

    async def turn(
        self,
        chat_id: int,
        event: Event,
        arrival: Arrival | None = None,
    ) -> Reply | None:
        """One turn of the conversation for a private chat; the reply goes back in the webhook's response
        when `arrival` allows, else to the outbox. Without `arrival` (not from `process`), the person's limit
        is counted here."""
        person = PersonRef(Channel.TELEGRAM, str(chat_id))
        admitted = arrival.within_limit if arrival is not None else await self.within_limit(chat_id)
        webhook_reply = arrival.webhook_reply if arrival is not None else None
        if not admitted:
            await self.queue_text(
                chat_id,
                say(
                    event.client_language or "pl",
                    "Too many questions in a short time — please wait a minute.",
                ),
            )
            return None
        async with db.transaction(self._sessions()) as session:
            reply = await self.conversation.handle(session, person, event)
            chunks = split_message(reply_html(reply))
            in_response = await self._reply_in_webhook(webhook_reply, chat_id, chunks, reply)
            if not in_response:
                self.queue_reply(session, chat_id, reply, chunks)
                self.feed.wake_after_commit(session)
        if in_response:  # counted once the turn is committed
            WEBHOOK_REPLIES.inc()
        return reply

    async def _reply_in_webhook(
        self, webhook_reply: WebhookReply | None, chat_id: int, chunks: list[str], reply: Reply
    ) -> bool:
        """Put the reply in the webhook's response if it is one message, the response is still free and
        the bot's limits allow a message to this chat now (reserved then, as the outbox would). The
        response is remembered under the update's key in the same step: should it not reach Telegram,
        the update comes again and gets it again. (Should the turn fail after all, the key goes.)"""
        if (
            not self.reply_in_webhook
            or webhook_reply is None
            or webhook_reply.sent is not None
            or webhook_reply.update_id is None
            or len(chunks) != 1
        ):
            return False
        assert self.pace is not None
        body = WebhookReply.of(
            SendMessage(chat_id=chat_id, text=chunks[0], reply_markup=keyboard(reply.actions)), self.bot
        )
        record = (f"tg:update:{webhook_reply.update_id}", json.dumps(body))
        if not await self.pace.reserve_now(str(chat_id), within=WEBHOOK_REPLY_EARLY_SECONDS, record=record):
            return False
        webhook_reply.sent = body
        return True

    def queue_reply(self, session: AsyncSession, chat_id: int, reply: Reply, chunks: list[str]) -> None:
        """The reply as Telegram messages under the size limit (`chunks`, already cut); the buttons go with
        the last one."""
        for number, chunk in enumerate(chunks, start=1):
            enqueue(
                session,
                channel=Channel.TELEGRAM,
                recipient=str(chat_id),
                text=chunk,
                format="html",
                actions=actions_to_json(reply.actions) if number == len(chunks) and reply.actions else None,
            )

    async def queue_text(self, chat_id: int, text: str) -> None:
        async with db.transaction(self._sessions()) as session:
            enqueue(session, channel=Channel.TELEGRAM, recipient=str(chat_id), text=text)
            self.feed.wake_after_commit(session)

    async def close(self) -> None:
        await self.dispatcher.storage.close()
        await self.bot.session.close()


def update_from_json(payload: Any, bot: Bot) -> Update:
    """A webhook body as an aiogram Update (ValueError for anything that is not one)."""
    return Update.model_validate(payload, context={"bot": bot})


ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
# The command menu Telegram shows, described in each language.
COMMAND_MENU = {
    "start": N_("Start, choose the language"),
    "topics": N_("Topics"),
    "human": N_("Talk to a consultant"),
    "status": N_("Status of my case"),
    "language": N_("Language"),
    "help": N_("What the bot can do"),
    "subscriptions": N_("Topics I am told about when they change"),
    "privacy": N_("What is stored about me"),
    "forget": N_("Erase my data"),
}


async def announce_commands(bot: Bot) -> None:
    """The command menu in every language the infoline speaks (Polish for everyone else)."""
    for language in ("pl", "uk", "ru", "en"):
        commands = [
            BotCommand(command=name, description=say(language, text)) for name, text in COMMAND_MENU.items()
        ]
        await bot.set_my_commands(commands, language_code=None if language == "pl" else language)


async def register_webhook(bot: Bot, settings: Settings) -> str:
    """Point Telegram at this service's webhook, with the secret it must send; the URL registered."""
    assert settings.public_url
    assert settings.telegram.webhook_secret is not None
    url = settings.public_url.rstrip("/") + "/telegram/webhook"
    await bot.set_webhook(
        url=url,
        secret_token=settings.telegram.webhook_secret.get_secret_value(),
        allowed_updates=ALLOWED_UPDATES,
        max_connections=settings.telegram.webhook_max_connections,
    )
    await announce_commands(bot)
    return url


async def poll(channel: TelegramChannel) -> None:
    """Long polling for development (no public address needed); each update goes the webhook's way."""
    await channel.bot.delete_webhook(drop_pending_updates=False)
    await announce_commands(channel.bot)
    offset: int | None = None
    while True:
        updates = await channel.bot.get_updates(offset=offset, timeout=25, allowed_updates=ALLOWED_UPDATES)
        for incoming in updates:
            offset = incoming.update_id + 1
            try:
                await channel.process(incoming)
            except Exception:  # one bad update must not stop the bot
                log.exception("telegram.update_failed", extra={"update_id": incoming.update_id})
