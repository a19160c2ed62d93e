"""PID points with their published hours (seed data from DESIGN.md; admins edit them later).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WEEKDAYS_0730_1530 = {day: ["07:30", "15:30"] for day in ("tue", "wed", "thu", "fri")}

SEED: list[dict[str, Any]] = [
    {
        "code": "KRK-RONDO",
        "name": "Wydział Spraw Cudzoziemców – punkt informacyjno-doradczy",
        "town": "Kraków",
        "address": "ul. Przy Rondzie 6, Kraków",
        "hours": {"mon": ["07:00", "18:00"], **_WEEKDAYS_0730_1530},
    },
    {
        "code": "KRK-BASZTOWA",
        "name": "Małopolski Urząd Wojewódzki – punkt informacyjno-doradczy",
        "town": "Kraków",
        "address": "ul. Basztowa 22, Kraków",
        "hours": {"mon": ["07:30", "17:00"], **_WEEKDAYS_0730_1530},
    },
    {
        "code": "KRK-CHLOPICKIEGO",
        "name": "Punkt informacyjno-doradczy Chłopickiego",
        "town": "Kraków",
        "address": "ul. Chłopickiego 4, Kraków",
        "hours": None,
    },
    {
        "code": "TARNOW",
        "name": "Delegatura MUW w Tarnowie – punkt informacyjno-doradczy",
        "town": "Tarnów",
        "address": "Al. Solidarności 5-9, Tarnów",
        "hours": {day: ["07:30", "15:30"] for day in ("mon", "tue", "wed", "thu", "fri")},
    },
    {
        "code": "NOWY-SACZ",
        "name": "Delegatura MUW w Nowym Sączu – punkt informacyjno-doradczy",
        "town": "Nowy Sącz",
        "address": "ul. Jagiellońska 52, Nowy Sącz",
        "hours": None,
    },
]


def upgrade() -> None:
    table = op.create_table(
        "pid_office",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("town", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("hours", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_pid_office_code", "pid_office", ["code"], unique=True)
    op.bulk_insert(table, [{**row, "active": True} for row in SEED])


def downgrade() -> None:
    op.drop_index("ix_pid_office_code", table_name="pid_office")
    op.drop_table("pid_office")
