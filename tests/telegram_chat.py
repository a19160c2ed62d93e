"""A person's Telegram chat in the tests: updates into the webhook of the session's Telegram app (the real
aiogram client against tests/fake_telegram.py), the outbox delivered, what arrived read back. Shared by
the Telegram and change-alert tests."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import TELEGRAM_WEBHOOK_SECRET as SECRET
from tests.fake_telegram import FakeTelegram, Updates
from tickets.outbox import drain


class Bot:
    """A person's side of the chat: send updates to the webhook, deliver the outbox, read what arrived."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        app: FastAPI,
        sessions: Any,
        fake: FakeTelegram,
        updates: Updates,
        chat: int,
        language: str = "uk",
    ):
        self.http, self.app, self.sessions, self.fake, self.updates, self.chat = (
            http,
            app,
            sessions,
            fake,
            updates,
            chat,
        )
        self.language = language  # the person's Telegram app language, sent with every update
        self.seen = 0

    async def post(
        self, update: dict[str, Any], *, secret: str | None = SECRET, reaches_telegram: bool = True
    ) -> httpx.Response:
        """An update into the webhook, as Telegram sends it; a reply in the response reaches the chat
        (unless the response is lost on the way: `reaches_telegram=False`)."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        response = await self.http.post("/telegram/webhook", json=update, headers=headers)
        if response.status_code == 200 and reaches_telegram:
            self.fake.webhook_response(response.content)
        return response

    async def deliver(self, **options: Any) -> None:
        await drain(self.sessions, self.app.state.services.deliverers, **options)

    async def say(self, text: str, **extra: Any) -> list[dict[str, Any]]:
        response = await self.post(self.updates.message(self.chat, text, language=self.language, **extra))
        assert response.status_code == 200, response.text
        return await self.received()

    async def press(self, data: str) -> list[dict[str, Any]]:
        response = await self.post(self.updates.button(self.chat, data, language=self.language))
        assert response.status_code == 200, response.text
        return await self.received()

    async def received(self) -> list[dict[str, Any]]:
        """The messages that arrived in the chat since the last look."""
        await self.deliver()
        messages = self.fake.sent(self.chat)
        new, self.seen = messages[self.seen :], len(messages)
        return new


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [button["callback_data"] for row in markup.get("inline_keyboard", []) for button in row]
