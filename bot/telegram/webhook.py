"""`POST /telegram/webhook`: check Telegram's secret header, hand the update over once, answer fast;
the response carries the turn's reply when it fits (see bot.telegram.channel).

A body that is not an update is acknowledged and logged (a 5xx would make Telegram redeliver it for a
day). Only when the service itself is down (database, Redis) does the webhook answer 503, so that
Telegram redelivers the update later and nothing the person wrote is lost.
"""

from __future__ import annotations

import hmac
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.telegram.channel import TelegramChannel, WebhookReply, update_from_json
from infoopt.core.deps import get_services

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name, not a secret
MAX_UPDATE_BYTES = 1_000_000


@router.post("/telegram/webhook")
async def telegram_webhook(request: Request) -> JSONResponse:
    """Telegram's updates, checked against TELEGRAM_WEBHOOK_SECRET."""
    services = get_services(request)
    channel: TelegramChannel | None = services.telegram
    secret = services.settings.telegram.webhook_secret
    if channel is None or secret is None:
        return JSONResponse(
            {"error": "not_found", "detail": "the Telegram bot is not configured"}, status_code=404
        )
    given = request.headers.get(SECRET_HEADER)
    if not given:
        return JSONResponse(
            {"error": "not_signed_in", "detail": "the secret token header is missing"}, status_code=401
        )
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        return JSONResponse({"error": "forbidden", "detail": "wrong secret token"}, status_code=403)
    body = await request.body()
    try:
        if len(body) > MAX_UPDATE_BYTES:
            raise ValueError(f"{len(body)} bytes")
        update = update_from_json(json.loads(body), channel.bot)
    except (ValueError, ValidationError) as error:
        log.warning("telegram.malformed_update", extra={"error": str(error)[:300]})
        return JSONResponse({"ok": True})
    webhook_reply = WebhookReply()
    try:
        await channel.process(update, webhook_reply)
    # The database away, or every pooled connection busy past the pool's timeout: a 503, so Telegram
    # sends the update again (a 200 here would lose what the person wrote).
    except (OperationalError, DBAPIError, PoolTimeout, RedisError, OSError, TimeoutError) as error:
        log.error(
            "telegram.update_deferred", extra={"update_id": update.update_id, "error": str(error)[:300]}
        )
        return JSONResponse({"ok": False, "detail": "try again later"}, status_code=503)
    except Exception:
        log.exception("telegram.update_failed", extra={"update_id": update.update_id})
        return JSONResponse({"ok": True})
    return JSONResponse(webhook_reply.body())
