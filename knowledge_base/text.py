"""Text as search and the classifiers see it: lower case, Latin diacritics folded, one space."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """'Opłata  SKARBOWA' -> 'oplata skarbowa'; Cyrillic keeps its marks (й, ё, ї carry meaning)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("ł", "l")
    kept: list[str] = []
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.combining(char) and kept and kept[-1].isascii():
            continue
        kept.append(char)
    return " ".join(unicodedata.normalize("NFC", "".join(kept)).split())
