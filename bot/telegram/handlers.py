"""Telegram updates into conversation events: commands, text, buttons, files and everything else.

Only private chats talk to the bot; in a group it says once where to write, and is otherwise silent.
Every callback query is answered, whatever happens after. `arrival` (from `TelegramChannel.process`: the
person within their rate limit? may the reply go back in the webhook's response?) is handed on to the turn.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.utils.magic_filter import MagicFilter

from bot.flows import Event
from bot.replies import ActionName, ReplyKind
from bot.telegram.render import parse_callback
from infoopt.core.i18n import say
from infoopt.core.languages import LANGUAGES

log = logging.getLogger(__name__)


def inline(check: MagicFilter) -> Callable[[TelegramObject], Awaitable[Any]]:
    """A magic filter as a coroutine: aiogram runs a plain one in a thread (`asyncio.to_thread`), a thread
    hop for every filter of every update, which costs far more than the check itself."""

    async def resolved(event: TelegramObject) -> Any:
        return check.resolve(event)

    return resolved


router = Router(name="infoline")
private = Router(name="private")
private.message.filter(inline(F.chat.type == ChatType.PRIVATE))
private.edited_message.filter(inline(F.chat.type == ChatType.PRIVATE))
groups = Router(name="groups")
router.include_routers(private, groups)

COMMANDS = {
    "help": ActionName.HELP,
    "language": ActionName.LANGUAGE,
    "topics": ActionName.TOPICS,
    "human": ActionName.CONSULTANT,
    "status": ActionName.CASE_STATUS,
    "privacy": ActionName.PRIVACY,
    "forget": ActionName.FORGET,
    "subscriptions": ActionName.SUBSCRIPTIONS,
}


def client_language(message: Message | CallbackQuery) -> str | None:
    """The language of the person's Telegram app, if the infoline speaks it."""
    code = (message.from_user.language_code or "")[:2] if message.from_user else ""
    return code if code in LANGUAGES else None


@private.message(CommandStart())
async def start(message: Message, channel: Any, arrival: Any = None) -> None:
    await channel.turn(
        message.chat.id,
        Event(
            action=ActionName.START, value=client_language(message), client_language=client_language(message)
        ),
        arrival,
    )


@private.message(Command(*COMMANDS))
async def command(message: Message, channel: Any, arrival: Any = None) -> None:
    name = (message.text or "").split()[0].lstrip("/").split("@")[0].lower()
    await channel.turn(
        message.chat.id,
        Event(action=COMMANDS[name], client_language=client_language(message)),
        arrival,
    )


@private.message(inline(F.text))
@private.edited_message(inline(F.text))
async def text(message: Message, channel: Any, arrival: Any = None) -> None:
    """A question, or an answer to a step of a flow (an edited message is read as the new words)."""
    await channel.turn(
        message.chat.id,
        Event(text=message.text or "", client_language=client_language(message)),
        arrival,
    )


@private.message(inline(F.photo))
async def photo(message: Message, channel: Any, arrival: Any = None) -> None:
    assert message.photo is not None
    largest = max(message.photo, key=lambda size: size.width * size.height)
    attachment = {
        "kind": "photo",
        "file_id": largest.file_id,
        "name": f"photo-{message.message_id}.jpg",
        "size": largest.file_size,
        "mime": "image/jpeg",
    }
    await channel.turn(
        message.chat.id,
        Event(
            text=message.caption or "",
            media="photo",
            attachment=attachment,
            client_language=client_language(message),
        ),
        arrival,
    )


@private.message(inline(F.document))
async def document(message: Message, channel: Any, arrival: Any = None) -> None:
    assert message.document is not None
    file = message.document
    attachment = {
        "kind": "document",
        "file_id": file.file_id,
        "name": (file.file_name or f"document-{message.message_id}")[:200],
        "size": file.file_size,
        "mime": file.mime_type,
    }
    await channel.turn(
        message.chat.id,
        Event(
            text=message.caption or "",
            media="document",
            attachment=attachment,
            client_language=client_language(message),
        ),
        arrival,
    )


@private.message(inline(F.voice | F.audio | F.video_note))
async def voice(message: Message, channel: Any, arrival: Any = None) -> None:
    await channel.turn(
        message.chat.id,
        Event(media="voice", client_language=client_language(message)),
        arrival,
    )


@private.message()
async def anything_else(message: Message, channel: Any, arrival: Any = None) -> None:
    """Stickers, locations, contacts, videos, polls...: a clear word instead of silence."""
    await channel.turn(
        message.chat.id,
        Event(media="other", client_language=client_language(message)),
        arrival,
    )


@router.callback_query()
async def button(query: CallbackQuery, channel: Any, arrival: Any = None) -> None:
    """A pressed button: the action it carries, as if the person had chosen it in any other channel."""
    parsed = parse_callback(query.data or "")
    message = query.message
    if parsed is None or message is None or message.chat.type != ChatType.PRIVATE:
        await query.answer()
        return
    action, value = parsed
    try:
        reply = await channel.turn(
            message.chat.id,
            Event(action=action, value=value, client_language=client_language(query)),
            arrival,
        )
    except Exception:
        await query.answer()
        raise
    toast = reply.text[:190] if reply is not None and reply.kind is ReplyKind.FEEDBACK else None
    await query.answer(text=toast)


@groups.message(Command(*COMMANDS, "start"))
async def in_a_group(message: Message, channel: Any) -> None:
    """In a group the bot does not talk about anyone's stay: it points to a private chat."""
    language = client_language(message) or "pl"
    await channel.queue_text(
        message.chat.id, say(language, "I answer only in a private chat. Write to me directly, please.")
    )
