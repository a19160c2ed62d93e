"""case records pushed by the case-management system (dates of birth only as keyed hashes)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('case_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('case_number', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('birth_date_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('stage', sa.Enum('received', 'formal_check', 'missing_documents', 'fingerprints', 'under_review', 'decision_issued', 'card_ready', 'closed', name='casestage', native_enum=False, length=25, create_constraint=False), nullable=False),
    sa.Column('stage_date', sa.Date(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_key')
    )
    op.create_index(op.f('ix_case_record_closed_on'), 'case_record', ['closed_on'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_case_record_closed_on'), table_name='case_record')
    op.drop_table('case_record')
