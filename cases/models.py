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
    # Its digits alone (cases.numbers.case_digits): how a caller keys it in on the phone.
    case_digits: str = Field(default="", max_length=40, index=True)
    birth_date_hash: str = Field(max_length=64)
    stage: CaseStage = Field(sa_column=Column(enum_column(CaseStage), nullable=False))
    stage_date: date
    closed_on: date | None = Field(default=None, index=True)  # for the purge after closing
    updated_at: datetime = Field(default_factory=utcnow)


class LookupOutcome(StrEnum):
    FOUND = "found"  # the number and the date of birth match a case
    NO_MATCH = "no_match"  # no such case, or the wrong date of birth: the person hears the same words
    REFUSED = "refused"  # over an attempt limit: not looked up at all


class CaseLookup(SQLModel, table=True):
    """The audit of every case lookup, and what the attempt limits count.

    Who asked and which case are kept only as keyed hashes: enough to count attempts per conversation,
    per client address or phone number, and per case number, and to answer "who looked up this case"
    for someone holding the secret key; nothing a reader of the table can turn back into a number.
    """

    __tablename__ = "case_lookup"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    channel: str = Field(max_length=16)
    outcome: LookupOutcome = Field(sa_column=Column(enum_column(LookupOutcome), nullable=False))
    person_ref: str = Field(max_length=64, index=True)
    origin_ref: str = Field(max_length=64, index=True)
    case_ref: str = Field(max_length=64, index=True)
