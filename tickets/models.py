"""Tables of the ticket desk. The PID points come first: their hours drive every SLA clock."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

# Opening hours as {"mon": ["07:00", "18:00"], ...}; a missing weekday is closed.
WeeklyHours = dict[str, list[str]]


class PidOfficeBase(SQLModel):
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=200)
    town: str = Field(max_length=100)
    address: str = Field(max_length=200)
    # None while the office has not confirmed its hours; such an office promises no SLA.
    hours: WeeklyHours | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    # What people and staff must know before relying on this point (e.g. not confirmed since 2023).
    note: str | None = Field(default=None, max_length=500)
    active: bool = True


class PidOffice(PidOfficeBase, table=True):
    __tablename__ = "pid_office"

    id: int | None = Field(default=None, primary_key=True)
    updated_at: datetime | None = None


class PidOfficeRead(PidOfficeBase):
    id: int
