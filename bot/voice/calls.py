"""What the voice line remembers about one call between Twilio's webhooks, in Redis (in-process fallback):
the language, the caller's number, what the keypad digits mean right now, and what was said last."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CALL_TTL_SECONDS = 2 * 3600


@dataclass
class CallState:
    language: str | None = None
    caller: str = ""
    # Digit -> {"action", "value", "label"} for the menu just offered ("repeat", "ask", "sms" are the
    # voice line's own; others are the conversation's actions).
    menu: dict[str, dict[str, str | None]] = field(default_factory=dict)
    last_said: str = ""  # to say again
    sms_text: str = ""  # the full answer with its links, if the caller wants it by SMS
    sms_sent: bool = False
    failures: int = 0  # silences and misunderstandings in a row
    outcome: str = "bot"  # bot, transferred, callback (CallOutcome)
    ticket_number: str | None = None
    entry: str | None = None  # "digits" while the caller keys in a number ended by #
    confirming: bool = False  # "Do you mean …?" was asked: a spoken yes or no is keys 1 or 2


def masked(number: str) -> str:
    """A phone number for logs: the country code and the last three digits only."""
    return (number[:3] + "…" + number[-3:]) if len(number) > 6 else "…"


class CallStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def load(self, call_sid: str) -> CallState | None:
        try:
            raw = await self.redis.get(f"voice:call:{call_sid}")
        except RedisError as error:
            log.warning("voice.state_unavailable", extra={"error": str(error)})
            return None
        if not raw:
            return None
        try:
            data: dict[str, Any] = json.loads(raw)
            return CallState(**data)
        except (ValueError, TypeError):
            return None

    async def save(self, call_sid: str, state: CallState) -> None:
        try:
            await self.redis.set(f"voice:call:{call_sid}", json.dumps(asdict(state)), ex=CALL_TTL_SECONDS)
        except RedisError as error:
            log.warning("voice.state_unsaved", extra={"error": str(error), "caller": masked(state.caller)})

    async def remembered_reply(self, token: str) -> str | None:
        """The TwiML already given for a request Twilio is retrying (its idempotency token)."""
        if not token:
            return None
        try:
            raw = await self.redis.get(f"voice:reply:{token}")
        except RedisError:
            return None
        return raw.decode() if isinstance(raw, bytes) else raw

    async def remember_reply(self, token: str, twiml: str) -> None:
        if not token:
            return
        with contextlib.suppress(RedisError):
            await self.redis.set(f"voice:reply:{token}", twiml, ex=600)
