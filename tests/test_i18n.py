"""The gettext catalogues: every text people and staff read exists in pl, uk, ru and en, placeholders intact.

Two domains: `messages` (what foreigners read and hear; `say(language, "…")` with {name} placeholders)
and `staff` (the staff pages; `{% trans %}`/`_()` in the staff templates with %(name)s placeholders,
`staff_text(request, "…")` in infoopt/staff).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from infoopt.core.i18n import catalogue_path, say, translations
from infoopt.core.languages import LANGUAGES
from infoopt.core.web import staff_language

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")
STAFF_PLACEHOLDER = re.compile(r"%\((\w+)\)s|\{(\w+)\}")
HTML_TAG = re.compile(r"</?\w+[^>]*>")
# How scripts/i18n.sh extracts each domain.
EXTRACTION = {
    "messages": ["-F", "babel.cfg", "-k", "say:2", "-k", "N_"],
    "staff": ["-F", "babel-staff.cfg", "-k", "staff_text:2"],
}


def _messages(language: str) -> list[tuple[str, str, bool]]:
    with catalogue_path(language).open("rb") as source:
        return [(m.id, m.string, m.fuzzy) for m in read_po(source, locale=language) if m.id]  # type: ignore[misc]


def _staff_messages(language: str) -> list[tuple[tuple[str, ...], tuple[str, ...], bool]]:
    """(msgid forms, msgstr forms, fuzzy) of the staff catalogue; a plural has several of each."""
    with catalogue_path(language, "staff").open("rb") as source:
        catalog = read_po(source, locale=language, domain="staff")
    return [
        (
            tuple(m.id) if isinstance(m.id, tuple | list) else (m.id,),
            tuple(m.string) if isinstance(m.string, tuple | list) else (m.string,),
            m.fuzzy,
        )
        for m in catalog
        if m.id
    ]


def _extracted(domain: str, tmp_path: Path) -> set[str]:
    pot = tmp_path / f"{domain}.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "-q",
            "extract",
            *EXTRACTION[domain],
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    with pot.open("rb") as source:
        return {
            message.id[0] if isinstance(message.id, tuple | list) else message.id
            for message in read_po(source)
            if message.id
        }


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_translated_with_its_placeholders(language: str) -> None:
    messages = _messages(language)
    assert len(messages) >= 40
    for message_id, translation, fuzzy in messages:
        assert translation.strip() and not fuzzy, f"{language}: no translation for {message_id!r}"
        assert set(PLACEHOLDER.findall(translation)) == set(PLACEHOLDER.findall(message_id)), (
            language,
            message_id,
        )


def test_the_catalogues_hold_every_text_the_code_uses(tmp_path: Path) -> None:
    """Extraction over the code finds nothing the catalogues lack (run scripts/i18n.sh update if it does)."""
    used = _extracted("messages", tmp_path)
    known = {message_id for message_id, _translation, _fuzzy in _messages("pl")}
    assert used - known == set()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_staff_text_is_translated_with_its_placeholders_and_markup(language: str) -> None:
    messages = _staff_messages(language)
    assert len(messages) >= 100
    plural_forms = {"pl": 3, "uk": 3, "ru": 3, "en": 2}[language]
    for message_ids, translations_, fuzzy in messages:
        where = f"{language}: {message_ids[0]!r}"
        assert not fuzzy and all(text.strip() for text in translations_), f"no translation for {where}"
        if len(message_ids) > 1:
            assert len(translations_) == plural_forms, f"every plural form of {where}"
        for translation in translations_:
            assert set(STAFF_PLACEHOLDER.findall(translation)) == set(
                STAFF_PLACEHOLDER.findall(message_ids[0])
            ), where
            assert sorted(HTML_TAG.findall(translation)) == sorted(HTML_TAG.findall(message_ids[0])), where
        if language == "en":
            assert translations_ == message_ids, f"English is the message id itself: {where}"


def test_the_staff_catalogues_hold_every_text_the_staff_pages_use(tmp_path: Path) -> None:
    """Extraction over the staff templates and infoopt/staff finds nothing the catalogues lack."""
    used = _extracted("staff", tmp_path)
    assert (
        "Knowledge base" in used
        and "Wrong username or password, or the account is locked for a while." in used
    )
    for language in LANGUAGES:
        known = {message_ids[0] for message_ids, _translation, _fuzzy in _staff_messages(language)}
        assert used - known == set(), language


def test_staff_texts_use_the_polish_office_terms() -> None:
    polish = translations("pl", "staff")
    assert polish.gettext("Knowledge base") == "Baza wiedzy"
    assert polish.gettext("Save draft") == "Zapisz szkic"
    assert polish.gettext("Audit trail") == "Ślad audytowy"
    assert polish.ngettext("%(count)s draft", "%(count)s drafts", 5) == "%(count)s szkiców"
    assert translations("uk", "staff").gettext("Sign in") == "Увійти"
    assert translations("en", "staff").gettext("Sign in") == "Sign in"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7", "pl"),
        ("de-DE,de;q=0.9,uk;q=0.8,en;q=0.5", "uk"),
        ("en;q=0.4, ru-RU;q=0.9", "ru"),
        ("de, fr;q=0.9", "en"),
        ("pl;q=0, uk;q=0.1", "uk"),
        ("*", "en"),
        ("PL", "pl"),
        ("pl;q=abc, ru;q=0.5", "ru"),
    ],
)
def test_staff_language_follows_the_browser(header: str | None, language: str) -> None:
    assert staff_language(header) == language


def test_say_speaks_the_persons_language_and_fills_values() -> None:
    assert say("uk", "Checked on {date}", date="02.12.2026") == "Перевірено: 02.12.2026"
    assert say("ru", "Consultant") == "Консультант"
    assert say("de", "Consultant") == "Konsultant", "a language the infoline does not speak gets Polish"
