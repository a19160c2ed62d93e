"""Answers written to be read, made to be heard: no links or Markdown read aloud, amounts and dates in
words of the language, long account numbers left for the SMS."""

from __future__ import annotations

import re
from datetime import date

from babel.dates import format_date
from babel.numbers import get_currency_name
from markdown_it import MarkdownIt

from infoopt.core.i18n import say

# Where Twilio's speech recognition and voices expect each language.
SPEECH_LANGUAGES = {"pl": "pl-PL", "uk": "uk-UA", "ru": "ru-RU", "en": "en-US"}

_URL = re.compile(r"https?://\S+|www\.\S+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# A Polish bank account: 26 digits, usually written in groups (PL and spaces optional).
_ACCOUNT = re.compile(r"(?:PL\s?)?\d{2}(?:\s?\d{4}){6}")
# An amount in złoty as the articles write it in any of the four languages: "440 zł", "440 PLN", "440 зл".
_AMOUNT = re.compile(
    r"(\d[\d\s]*?\d|\d)(?:[.,](\d{2}))?\s?(?:zł|PLN|złotych|złote|зл|злотих|злотых|zlotys?)\.?(?!\w)",
    re.IGNORECASE,
)
_DATE = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b")
_SPACES = re.compile(r"[ \t]+")
_markdown = MarkdownIt("commonmark")


def _plain(markdown: str) -> str:
    """Markdown as the words it shows: no markup, list items and headings as sentences."""
    tokens = _markdown.parse(markdown)
    parts: list[str] = []
    for token in tokens:
        if token.type == "inline" and token.children:
            words = "".join(
                child.content for child in token.children if child.type in ("text", "code_inline")
            )
            words = words.strip()
            if words and words[-1] not in ".!?:;":
                words += "."
            parts.append(words)
    return " ".join(parts)


def _amount(match: re.Match[str], language: str) -> str:
    number = int(re.sub(r"\s", "", match.group(1)))
    return f"{number} {get_currency_name('PLN', count=number, locale=language)}"


def _date(match: re.Match[str], language: str) -> str:
    day, month, year = (int(part) for part in match.groups())
    try:
        return format_date(date(year, month, day), "d MMMM y", locale=language)
    except ValueError:
        return match.group(0)


def speakable(text: str, language: str, *, markdown: bool = False) -> str:
    """The text as a voice should say it in `language`."""
    text = _plain(text) if markdown else text
    text = _ACCOUNT.sub(say(language, "the account number (I will send it by SMS)"), text)
    text = _URL.sub(say(language, "the link (in the SMS)"), text)
    text = _EMAIL.sub(
        lambda m: (
            m.group(0)
            .replace("@", " " + say(language, "at") + " ")
            .replace(".", " " + say(language, "dot") + " ")
        ),
        text,
    )
    text = _AMOUNT.sub(lambda m: _amount(m, language), text)
    text = _DATE.sub(lambda m: _date(m, language), text)
    text = text.replace("*", "").replace("#", "").replace("_", " ")
    return _SPACES.sub(" ", text).strip()
