"""Entities the embedded engine finds by pattern: the case number and the PID point's town or street.

Rasa's DIET learns these from the annotated training data; the embedded engine has no sequence
model, and both shapes are regular enough for patterns: a case number is `WSC-II-P.6151.12345.2025`
(people also write it with spaces or in lower case), and the towns and streets are a short list.
"""

from __future__ import annotations

import re

from knowledge_base.text import fold

_CASE_NUMBER = re.compile(
    r"\b(WSC)[\s.\-]*([IVX]{1,4})[\s.\-]*([A-Z])[\s.\-]*(\d{4})[\s.\-]*(\d{1,6})[\s.\-]*(\d{4})\b",
    re.IGNORECASE,
)

# Folded stems (see knowledge_base.text.fold) → the PID point they point at.
_PLACES = (
    ("KRK-RONDO", ("przy rondzie", "rondzie")),
    ("KRK-BASZTOWA", ("basztow",)),
    ("KRK-CHLOPICKIEGO", ("chlopick", "хлопіцк", "хлопицк")),
    ("TARNOW", ("tarnow", "тарнов", "тарнув", "тарнів")),
    (
        "NOWY-SACZ",
        (
            "nowy sacz",
            "nowym saczu",
            "nowego sacza",
            "новы сонч",
            "новий сонч",
            "новому сончі",
            "новом сонче",
            "новим сончем",
            "нови сонч",
        ),
    ),
    ("KRAKOW", ("krakow", "краков", "краків", "кракові", "кракове")),
)


def case_number(text: str) -> str | None:
    """The case number in canonical form (`WSC-II-P.6151.12345.2025`), if the text holds one."""
    match = _CASE_NUMBER.search(text)
    if match is None:
        return None
    office, department, kind, register, number, year = match.groups()
    return f"{office.upper()}-{department.upper()}-{kind.upper()}.{register}.{number}.{year}"


def place(text: str) -> str | None:
    """The PID point (or just Kraków) a message names, if any; the most specific match wins."""
    folded = fold(text)
    for code, stems in _PLACES:
        if any(stem in folded for stem in stems):
            return code
    return None


def extract(text: str) -> dict[str, str]:
    """Every entity found: `case_number`, and `town` as a PID code (or KRAKOW)."""
    found: dict[str, str] = {}
    number = case_number(text)
    if number:
        found["case_number"] = number
    town = place(text)
    if town:
        found["town"] = town
    return found
