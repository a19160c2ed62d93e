"""The gettext catalogues: every text people read exists in pl, uk, ru and en, placeholders intact."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from infoopt.core.i18n import catalogue_path, say
from infoopt.core.languages import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _messages(language: str) -> list[tuple[str, str, bool]]:
    with catalogue_path(language).open("rb") as source:
        return [(m.id, m.string, m.fuzzy) for m in read_po(source, locale=language) if m.id]  # type: ignore[misc]


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
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "-q",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "say:2",
            "-k",
            "N_",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    with pot.open("rb") as source:
        used = {message.id for message in read_po(source) if message.id}
    known = {message_id for message_id, _translation, _fuzzy in _messages("pl")}
    assert used - known == set()


def test_say_speaks_the_persons_language_and_fills_values() -> None:
    assert say("uk", "Checked on {date}", date="02.12.2026") == "Перевірено: 02.12.2026"
    assert say("ru", "Consultant") == "Консультант"
    assert say("de", "Consultant") == "Konsultant", "a language the infoline does not speak gets Polish"
