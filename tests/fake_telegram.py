"""A local fake of Telegram's Bot API: an HTTP server that records every call the real aiogram client
makes and answers the way Telegram does (including 429 with retry_after and 403 for a blocked bot)."""

from __future__ import annotations

import itertools
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, str]:
    """Run a fake of an outside API on a free loopback port; its runner (to clean up) and base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    ok: bool = True  # False: the fake answered with an error (429, 403, ...)


@dataclass
class FakeTelegram:
    """Start with `await fake.start()`; point TELEGRAM_API_BASE at `fake.url`."""

    token: str = "123456:TEST-token"
    calls: list[Call] = field(default_factory=list)
    # Errors to answer instead of success: method -> list of (status, description, retry_after).
    failures: dict[str, list[tuple[int, str, int | None]]] = field(default_factory=dict)
    blocked_chats: set[int] = field(default_factory=set)
    # What getUpdates hands out (long polling), oldest first; taken once.
    pending_updates: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1000))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._file)
        self._runner, self.url = await serve_on_loopback(app)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The messages delivered (sendMessage answered with success), to one chat if given, oldest first."""
        return [
            call.params
            for call in self.calls
            if call.method == "sendMessage"
            and call.ok
            and (chat_id is None or int(call.params["chat_id"]) == chat_id)
        ]

    def attempts(self, chat_id: int) -> int:
        """How many times a message to the chat was tried, delivered or not."""
        return sum(
            1
            for call in self.calls
            if call.method == "sendMessage" and int(call.params["chat_id"]) == chat_id
        )

    def fail_next(self, method: str, status: int, description: str, retry_after: int | None = None) -> None:
        self.failures.setdefault(method, []).append((status, description, retry_after))

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(method, params)
        self.calls.append(call)
        if self.failures.get(method):
            call.ok = False
            status, description, retry_after = self.failures[method].pop(0)
            return self._error(status, description, retry_after)
        if method == "sendMessage" and int(params.get("chat_id", 0)) in self.blocked_chats:
            call.ok = False
            return self._error(403, "Forbidden: bot was blocked by the user", None)
        return web.json_response({"ok": True, "result": self._result(method, params)})

    # What a downloaded file holds: its path's bytes (tests check the consultant gets exactly these).
    FILE_BYTES = b"\x89PNG fake scan of an application"

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        self.calls.append(Call("downloadFile", {"path": request.match_info["path"]}))
        return web.Response(body=self.FILE_BYTES, content_type="application/octet-stream")

    def webhook_response(self, body: bytes) -> Call | None:
        """What the bot answered a webhook request with: Telegram runs a method given there as if it had
        been called (its result goes nowhere). The call, as recorded, or None for a plain acknowledgement."""
        try:
            params = json.loads(body)
        except ValueError:
            return None
        if not isinstance(params, dict) or "method" not in params:
            return None
        call = Call(str(params.pop("method")), params)
        self.calls.append(call)
        if call.method == "sendMessage" and int(params.get("chat_id", 0)) in self.blocked_chats:
            call.ok = False
        return call

    @staticmethod
    def _error(status: int, description: str, retry_after: int | None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            data = await request.json()
            return dict(data)
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            text = value if isinstance(value, str) else str(value)
            try:
                params[key] = json.loads(text) if key in ("reply_markup", "allowed_updates") else text
            except ValueError:
                params[key] = text
        return params

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": 123456, "is_bot": True, "first_name": "INFO.OPT", "username": "infoopt_test_bot"}
        if method == "sendMessage":
            chat_id = int(params["chat_id"])
            return {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": params.get("text", ""),
            }
        if method == "getUpdates":
            handed, self.pending_updates = self.pending_updates, []
            return handed
        if method == "getFile":
            return {
                "file_id": params.get("file_id"),
                "file_unique_id": "u1",
                "file_size": 10,
                "file_path": "photos/1.jpg",
            }
        return True


class Updates:
    """Telegram updates as Telegram sends them to a webhook, numbered."""

    def __init__(self, start: int = 500_000) -> None:
        self._ids = itertools.count(start)
        self._messages = itertools.count(1)

    def _base(self, chat_id: int, language: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        user = {"id": chat_id, "is_bot": False, "first_name": "Olena"}
        if language:
            user["language_code"] = language
        return user, {"id": chat_id, "type": "private", "first_name": "Olena"}

    def message(
        self, chat_id: int, text: str, *, language: str | None = "uk", **extra: Any
    ) -> dict[str, Any]:
        user, chat = self._base(chat_id, language)
        message: dict[str, Any] = {
            "message_id": next(self._messages),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            **extra,
        }
        if text:
            message["text"] = text
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"update_id": next(self._ids), "message": message}

    def button(self, chat_id: int, data: str, *, language: str | None = "uk") -> dict[str, Any]:
        user, chat = self._base(chat_id, language)
        return {
            "update_id": next(self._ids),
            "callback_query": {
                "id": f"cb{next(self._messages)}",
                "from": user,
                "chat_instance": "ci",
                "data": data,
                "message": {"message_id": 1, "date": int(time.time()), "chat": chat, "text": "…"},
            },
        }

    def in_group(self, chat_id: int, text: str) -> dict[str, Any]:
        update = self.message(chat_id, text)
        update["message"]["chat"] = {"id": -chat_id, "type": "group", "title": "Ukrainians in Kraków"}
        return update
