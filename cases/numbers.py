"""Case numbers as people type them, made comparable: `WSC-II-S.6151.1234.2026`, "wsc ii s 6151 1234
2026", "WSC–II–S/6151/1234/2026" and Cyrillic look-alike letters all become the same key."""

from __future__ import annotations

import re
import unicodedata

# Cyrillic letters that look like Latin ones (people switch keyboards mid-number).
_LOOK_ALIKES = str.maketrans(
    {
        "А": "A",
        "В": "B",
        "С": "C",
        "Е": "E",
        "Н": "H",
        "І": "I",
        "Ї": "I",
        "К": "K",
        "М": "M",
        "О": "O",
        "Р": "P",
        "Т": "T",
        "Х": "X",
        "У": "Y",
        "Ѕ": "S",
        "Ј": "J",
    }
)
_TOKENS = re.compile(r"[A-Z]+|\d+")


def case_key(typed: str) -> str | None:
    """The comparable form of a case number (None when nothing like one is there): its letter and digit
    groups, upper case, Latin letters, numbers without leading zeros, joined by dots."""
    text = unicodedata.normalize("NFKC", typed).upper().translate(_LOOK_ALIKES)
    tokens = [str(int(token)) if token.isdigit() else token for token in _TOKENS.findall(text)]
    if len(tokens) < 3 or not any(token.isdigit() for token in tokens):
        return None
    return ".".join(tokens)
