"""What a person typed, made fit to understand: one normal form, no invisible characters, no markup.

Every channel's text goes through `clean_text`; a message with nothing left to understand (only
zero-width characters, punctuation or markup) is refused with a clear word instead of being answered.
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width and direction marks, the BOM, soft hyphen: invisible, they only get in the way.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
_MARKUP = re.compile(r"<[^<>]{0,200}>")
# Script and style elements hold code, never a question: they go whole.
_CODE = re.compile(r"<(script|style)\b[^>]{0,200}>.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_CONTENT = re.compile(r"[^\W_]", re.UNICODE)  # a letter or a digit, in any script


def clean_text(text: str) -> str:
    """NFKC, without invisible or control characters and markup tags, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = "".join(char if unicodedata.category(char)[0] != "C" else " " for char in text)
    text = _CODE.sub(" ", text)
    text = _MARKUP.sub(" ", text)
    return " ".join(text.split())


def has_content(text: str) -> bool:
    """Whether the cleaned text holds at least two letters or digits to understand."""
    return len(_CONTENT.findall(clean_text(text))) >= 2
