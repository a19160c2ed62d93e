"""The languages the infoline speaks and the channels people reach it through, defined once."""

from __future__ import annotations

from enum import StrEnum


class Language(StrEnum):
    PL = "pl"
    UK = "uk"
    RU = "ru"
    EN = "en"


# The master language first: Polish is what the office writes; the others follow it.
LANGUAGES: tuple[str, ...] = tuple(language.value for language in Language)
MASTER_LANGUAGE = Language.PL


class Channel(StrEnum):
    """Where a conversation happens; a person is (channel, id)."""

    WEB = "web"  # the web chat and other clients of POST /api/v1/ask
    TELEGRAM = "telegram"
    VOICE = "voice"  # a phone call through Twilio
    SMS = "sms"
