"""voice calls as Twilio reported them, and the phone number each PID point takes transfers on

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('voice_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_sid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('caller', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('outcome', sa.Enum('bot', 'transferred', 'callback', 'abandoned', name='calloutcome', native_enum=False, length=19, create_constraint=False), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('duration_seconds', sa.Integer(), nullable=False),
    sa.Column('ticket_number', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
    sa.Column('ended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('call_sid')
    )
    op.create_index(op.f('ix_voice_call_ended_at'), 'voice_call', ['ended_at'], unique=False)
    op.add_column('pid_office', sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column('pid_office', 'phone')
    op.drop_index(op.f('ix_voice_call_ended_at'), table_name='voice_call')
    op.drop_table('voice_call')
