"""The audit trail: who did what to which object, when and why. Never updated, never deleted.

Every package records its staff actions here (knowledge-base revisions today, tickets next) and the
admin pages read it through `audit_trail`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow


class AuditEntry(SQLModel, table=True):
    """Who did what to which object, when and why. Never updated, never deleted."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64, index=True)
    reason: str | None = Field(default=None, max_length=500)
    details: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


async def record_audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    reason: str | None = None,
    details: dict[str, object] | None = None,
) -> AuditEntry:
    """Record one entry of the audit trail."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        reason=(reason or None) and reason[:500],
        details=details or {},
    )
    session.add(entry)
    await session.flush()
    return entry


async def audit_trail(
    session: AsyncSession, *, actor: str | None = None, object_id: str | None = None, limit: int = 200
) -> Sequence[AuditEntry]:
    """The newest entries first, optionally for one actor or one object."""
    statement = select(AuditEntry).order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc()).limit(limit)
    if actor:
        statement = statement.where(AuditEntry.actor == actor)
    if object_id:
        statement = statement.where(AuditEntry.object_id == object_id)
    return (await session.exec(statement)).all()
