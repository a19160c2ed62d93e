"""How the desk's messages reach people: the web chat's deliverer, and the words the desk sends on its own.

The web chat shows whatever is in the person's conversation, so delivering there is adding a row to
it, inside the outbox worker's transaction (exactly once). Telegram and SMS register their own
deliverers beside this one.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.conversation import rating_actions
from bot.replies import actions_to_json
from infoopt.core.i18n import say
from infoopt.core.languages import Channel
from tickets.conversations import find_conversation, record_message
from tickets.models import MessageAuthor, OutboxJob
from tickets.outbox import DeliveryFailed
from tickets.service import PersonNotice


class WebDeliverer:
    """Puts a message into the person's web conversation, where the chat page picks it up."""

    channel = Channel.WEB
    transactional = True

    async def deliver(self, session: AsyncSession, job: OutboxJob) -> None:
        conversation = await find_conversation(session, Channel.WEB, job.recipient)
        if conversation is None:
            raise DeliveryFailed("the person's web conversation no longer exists", permanent=True)
        await record_message(
            session,
            conversation,
            author=MessageAuthor.CONSULTANT if job.ticket_message_id else MessageAuthor.BOT,
            text=job.text,
            kind="ticket_reply"
            if job.ticket_message_id
            else "change_notice"
            if job.change_id
            else "ticket_notice",
            actions=job.actions,
        )


def resolved_notice(language: str, number: str) -> PersonNotice:
    """What the person hears when their ticket is resolved: that it is, and a 1–5 rating to give."""
    return PersonNotice(
        text=say(
            language,
            "Your request {number} has been resolved. How would you rate the help you got? If something is still unclear, just write here.",
            number=number,
        ),
        actions=actions_to_json(rating_actions(language)),
    )
