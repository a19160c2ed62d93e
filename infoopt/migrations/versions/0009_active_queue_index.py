"""a partial index for the live queue: active tickets by due time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("status IN ('new', 'open', 'waiting')")


def upgrade() -> None:
    op.create_index(
        "ix_ticket_active_queue", "ticket", ["sla_due_at", "id"], postgresql_where=ACTIVE, sqlite_where=ACTIVE
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_active_queue", table_name="ticket")
