"""Files people sent on Telegram, fetched for a consultant by the file id Telegram gave (nothing is
copied to the service's disk)."""

from __future__ import annotations

import io

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError

from tickets.routes import FileUnavailable

MAX_FILE_BYTES = 20_000_000  # what the Bot API lets a bot download


class TelegramFiles:
    """Fetches a Telegram file by its file id."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def fetch(self, file_id: str) -> bytes:
        try:
            file = await self.bot.get_file(file_id)
            if file.file_path is None or (file.file_size or 0) > MAX_FILE_BYTES:
                raise FileUnavailable("Telegram does not hand this file to bots (too large or expired)")
            buffer = io.BytesIO()
            await self.bot.download_file(file.file_path, destination=buffer)
        except (TelegramAPIError, TelegramNetworkError) as error:
            raise FileUnavailable(f"Telegram did not give the file: {error.message}") from error
        return buffer.getvalue()
