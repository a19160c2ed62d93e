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


_CYRILLIC_TO_LATIN = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "ґ": "g", "д": "d", "е": "e", "є": "ye", "ё": "yo",
        "ж": "zh", "з": "z", "и": "i", "і": "i", "ї": "yi", "й": "y", "к": "k", "л": "l", "м": "m",
        "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh",
        "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu",
        "я": "ya", "'": "", "’": "",
    }
)  # fmt: skip


def to_latin(text: str) -> str:
    """Folded text with Cyrillic spelled in Latin letters, the way people transliterate in chats.

    "сколько стоит парковка" and "skolko stoit parkovka" come out alike, so the same question
    written both ways lands in one backlog group.
    """
    return fold(text).translate(_CYRILLIC_TO_LATIN)
