"""The backlog of what the bot failed at — fallbacks, "not helpful" votes, handoffs — grouped by
similarity so admins can turn a whole group into training examples or a better answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.logs import mask_personal
from knowledge_base.models import BotFailure, FailureKind
from knowledge_base.text import to_latin

MAX_TEXT = 2000
SIMILARITY = 0.45
RECENT_LIMIT = 3000


async def record_failure(
    session: AsyncSession,
    *,
    kind: FailureKind,
    text: str,
    language: str | None,
    topic_id: str | None = None,
    channel: str = "api",
) -> BotFailure:
    """Remember one thing the bot could not answer well."""
    failure = BotFailure(
        kind=kind,
        # What people write here may hold a phone number or a case number: the backlog needs neither.
        text=mask_personal(text.replace("\x00", "").strip()[:MAX_TEXT]),
        language=language,
        topic_id=topic_id,
        channel=channel,
    )
    session.add(failure)
    await session.flush()
    return failure


async def purge_failures(session: AsyncSession, *, before: datetime) -> int:
    """Delete backlog entries older than a moment (people's own words); how many went."""
    result = await session.exec(delete(BotFailure).where(col(BotFailure.at) < before))
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Similar failures: the most typical text first."""

    ids: tuple[int, ...]
    texts: tuple[str, ...]
    languages: dict[str, int]
    kinds: dict[str, int]
    topics: dict[str, int]

    @property
    def size(self) -> int:
        return len(self.ids)


def cluster(texts: Sequence[str], *, threshold: float = SIMILARITY) -> list[list[int]]:
    """Indices grouped greedily by character n-gram cosine similarity, largest groups first."""
    if not texts:
        return []
    if len(texts) == 1:
        return [[0]]
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True).fit_transform(
        [to_latin(text) for text in texts]
    )
    similarity = cosine_similarity(vectors)
    unassigned = set(range(len(texts)))
    groups: list[list[int]] = []
    # Seeds with the most close neighbours first, so a group forms around its most typical member.
    order = sorted(range(len(texts)), key=lambda i: -int((similarity[i] >= threshold).sum()))
    for seed in order:
        if seed not in unassigned:
            continue
        members = [i for i in sorted(unassigned) if similarity[seed, i] >= threshold]
        members.sort(key=lambda i: -similarity[seed, i])
        unassigned.difference_update(members)
        groups.append(members)
    return sorted(groups, key=len, reverse=True)


async def group_failures(session: AsyncSession, *, limit: int = RECENT_LIMIT) -> list[FailureGroup]:
    """The unresolved failures, newest `limit` of them, in similarity groups."""
    failures = (
        await session.exec(
            select(BotFailure)
            .where(col(BotFailure.resolved_at).is_(None))
            .order_by(col(BotFailure.at).desc())
            .limit(limit)
        )
    ).all()
    groups = []
    for members in cluster([failure.text for failure in failures]):
        chosen = [failures[i] for i in members]
        groups.append(
            FailureGroup(
                ids=tuple(f.id for f in chosen if f.id is not None),
                texts=tuple(f.text for f in chosen),
                languages=dict(Counter(f.language or "?" for f in chosen)),
                kinds=dict(Counter(str(f.kind) for f in chosen)),
                topics=dict(Counter(f.topic_id for f in chosen if f.topic_id)),
            )
        )
    return groups


async def resolve_failures(
    session: AsyncSession, ids: Sequence[int], *, actor: str, resolution: str
) -> list[BotFailure]:
    """Mark failures as dealt with (turned into training data, a better answer, or dismissed)."""
    failures = (await session.exec(select(BotFailure).where(col(BotFailure.id).in_(list(ids))))).all()
    now = utcnow()
    for failure in failures:
        failure.resolved_at = now
        failure.resolved_by = actor
        failure.resolution = resolution[:300]
        session.add(failure)
    await session.flush()
    return list(failures)


def as_training_examples(intent: str, texts: Sequence[str]) -> str:
    """Rasa NLU YAML for these texts under one intent, ready to paste into nlu_data/data/."""
    lines = sorted({" ".join(text.split()) for text in texts if text.strip()})
    # Inside a block scalar every character is literal, so no example needs quoting.
    examples = "".join(f"    - {line}\n" for line in lines)
    text = f'version: "3.1"\nnlu:\n- intent: {intent}\n  examples: |\n{examples}'
    yaml.safe_load(text)  # refuse to hand out a file Rasa could not read
    return text
