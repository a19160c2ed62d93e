"""case lookups audited (and counted for the attempt limits); case numbers matched by their digits

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('case_lookup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('outcome', sa.Enum('found', 'no_match', 'refused', name='lookupoutcome', native_enum=False, length=16, create_constraint=False), nullable=False),
    sa.Column('person_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('origin_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('case_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_case_lookup_at'), 'case_lookup', ['at'], unique=False)
    op.create_index(op.f('ix_case_lookup_case_ref'), 'case_lookup', ['case_ref'], unique=False)
    op.create_index(op.f('ix_case_lookup_origin_ref'), 'case_lookup', ['origin_ref'], unique=False)
    op.create_index(op.f('ix_case_lookup_person_ref'), 'case_lookup', ['person_ref'], unique=False)
    with op.batch_alter_table('case_record') as batch:
        batch.add_column(
            sa.Column('case_digits', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False, server_default='')
        )
        batch.create_index(batch.f('ix_case_record_case_digits'), ['case_digits'], unique=False)
    # Records imported before: their digits, from the number as the office wrote it.
    records = sa.table('case_record', sa.column('id', sa.Integer), sa.column('case_number', sa.String),
                       sa.column('case_digits', sa.String))
    connection = op.get_bind()
    for record_id, number in connection.execute(sa.select(records.c.id, records.c.case_number)).all():
        digits = ''.join(char for char in number if char.isdigit())
        connection.execute(records.update().where(records.c.id == record_id).values(case_digits=digits))


def downgrade() -> None:
    with op.batch_alter_table('case_record') as batch:
        batch.drop_index(batch.f('ix_case_record_case_digits'))
        batch.drop_column('case_digits')
    op.drop_index(op.f('ix_case_lookup_person_ref'), table_name='case_lookup')
    op.drop_index(op.f('ix_case_lookup_origin_ref'), table_name='case_lookup')
    op.drop_index(op.f('ix_case_lookup_case_ref'), table_name='case_lookup')
    op.drop_index(op.f('ix_case_lookup_at'), table_name='case_lookup')
    op.drop_table('case_lookup')
