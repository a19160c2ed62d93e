"""Content review logs: `reviews/<topic>.md`, one per topic, claim by claim.

Each log records what a reviewer checked in the topic's Polish master (and brought in line in the
other languages): every claim, the official source it was checked against and the verdict. Staff see
the log beside the article in the editor; the content tests hold every topic to having one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from knowledge_base.files import split_front_matter

REVIEWS_DIR = Path(__file__).resolve().parent / "reviews"


class Verdict(StrEnum):
    CONFIRMED = "confirmed"  # kept: the source says so
    CORRECTED = "corrected"  # changed to what the source says
    REMOVED = "removed"  # dropped: not confirmed and not needed
    HEDGED = "hedged"  # turned into "check with a consultant / INFO.OPT"


class ReviewLogError(ValueError):
    """A review log that cannot be read, with the file and the reason."""


@dataclass(frozen=True, slots=True)
class ReviewedClaim:
    number: int
    claim: str
    source: str
    verdict: Verdict
    note: str


@dataclass(frozen=True, slots=True)
class ReviewLog:
    topic_id: str
    reviewed_on: date
    scope: str
    claims: tuple[ReviewedClaim, ...]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for claim in self.claims if claim.verdict is verdict)


_ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)\|\s*$")


def _cells(row: str) -> list[str]:
    # A claim or note may quote a "|" only escaped as "\|".
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", row)]


def parse_review_log(text: str, *, origin: str = "review log") -> ReviewLog:
    """The log from its text: YAML front matter (topic_id, reviewed_on), a scope line, a claim table."""
    try:
        meta, body = split_front_matter(text, origin)
    except ValueError as error:
        raise ReviewLogError(str(error)) from error
    reviewed_on = meta.get("reviewed_on")
    if not isinstance(meta.get("topic_id"), str) or not isinstance(reviewed_on, date):
        raise ReviewLogError(f"{origin}: front matter needs topic_id and reviewed_on (YYYY-MM-DD)")
    scope = next((line.strip() for line in body.splitlines() if line.startswith("Scope:")), "")
    claims: list[ReviewedClaim] = []
    for line in body.splitlines():
        match = _ROW.match(line.strip())
        if not match:
            continue
        cells = _cells(match.group(2))
        if len(cells) != 4:
            raise ReviewLogError(f"{origin}: row {match.group(1)} needs claim | source | verdict | note")
        claim, source, verdict, note = cells
        try:
            claims.append(ReviewedClaim(int(match.group(1)), claim, source, Verdict(verdict), note))
        except ValueError as error:
            raise ReviewLogError(
                f"{origin}: row {match.group(1)}: verdict must be one of {', '.join(Verdict)}"
            ) from error
    return ReviewLog(meta["topic_id"], reviewed_on, scope, tuple(claims))


@lru_cache(maxsize=64)
def review_log(topic_id: str, root: Path = REVIEWS_DIR) -> ReviewLog | None:
    """The committed review log of a topic, or None when it has none."""
    path = root / f"{topic_id}.md"
    if not path.is_file():
        return None
    return parse_review_log(path.read_text(encoding="utf-8"), origin=str(path))
