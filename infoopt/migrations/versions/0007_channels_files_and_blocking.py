"""messages in a channel's own format, files people send to a ticket, people who blocked the bot

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('conversation', sa.Column('blocked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column('outbox_job', sa.Column('format', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default='text'))
    op.add_column('ticket_message', sa.Column('attachment', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    op.drop_column('ticket_message', 'attachment')
    op.drop_column('outbox_job', 'format')
    op.drop_column('conversation', 'blocked_at')
