"""Texts people and staff read, from gettext catalogues: `locales/<lang>/LC_MESSAGES/<domain>.po`.

The message ids are the English texts written in the code and templates (`say(language, "…")`,
`{% trans %}` in Jinja2); `scripts/i18n.sh` extracts them with Babel and merges them into every
language's catalogue, where a translator fills them in. The `.po` files are read directly (compiled in
memory once per process), so a catalogue edited in the repository is what runs. The bot, the web
pages, Telegram and the voice line read the same catalogues: `messages` for what foreigners read and
hear, `staff` for the consultants' and admins' pages.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from infoopt.core.languages import LANGUAGES, MASTER_LANGUAGE

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAINS = ("messages", "staff")


def catalogue_path(language: str, domain: str = "messages") -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{domain}.po"


@lru_cache(maxsize=16)
def translations(language: str, domain: str = "messages") -> gettext.GNUTranslations:
    """The compiled catalogue of one language (Polish for a language the infoline does not speak)."""
    if language not in LANGUAGES:
        language = MASTER_LANGUAGE
    with catalogue_path(language, domain).open("rb") as source:
        catalog = read_po(source, locale=language, domain=domain)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def say(language: str, message: str, **values: object) -> str:
    """`message` (an English message id) in `language`, filled with `values` ({name} placeholders)."""
    text = translations(language).gettext(message)
    return text.format(**values) if values else text


def N_(message: str) -> str:
    """Mark a text for extraction where it is translated later, with `say`."""
    return message
