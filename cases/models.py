"""Case records pushed by the office's case-management system: a stage per case number, and the date of
birth only as a keyed hash (enough to check what a person says, useless to anyone who reads the table)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from infoopt.core.clock import utcnow
from infoopt.core.columns import enum_column


class CaseStage(StrEnum):
    RECEIVED = "received"
    FORMAL_CHECK = "formal_check"
    MISSING_DOCUMENTS = "missing_documents"
    FINGERPRINTS = "fingerprints"
    UNDER_REVIEW = "under_review"
    DECISION_ISSUED = "decision_issued"
    CARD_READY = "card_ready"
    CLOSED = "closed"


class CaseRecord(SQLModel, table=True):
    __tablename__ = "case_record"

    id: int | None = Field(default=None, primary_key=True)
    # The comparable key (cases.numbers.case_key); the number as the office writes it beside it.
    case_key: str = Field(max_length=64, unique=True)
    case_number: str = Field(max_length=64)
    birth_date_hash: str = Field(max_length=64)
    stage: CaseStage = Field(sa_column=Column(enum_column(CaseStage), nullable=False))
    stage_date: date
    closed_on: date | None = Field(default=None, index=True)  # for the purge after closing
    updated_at: datetime = Field(default_factory=utcnow)
