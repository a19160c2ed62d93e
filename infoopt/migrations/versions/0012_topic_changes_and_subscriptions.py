"""topic changes marked for people to hear about; subscriptions to topics; outbox jobs of a change

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Enum('web', 'telegram', 'voice', 'sms', name='channel', native_enum=False, length=16, create_constraint=False), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('topic_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'recipient', 'topic_id', name='uq_subscription_person_topic')
    )
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.create_index('ix_subscription_topic_active', ['topic_id', 'active'], unique=False)

    op.create_table('kb_topic_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('revision_id', sa.Integer(), nullable=False),
    sa.Column('summaries', sa.JSON(), nullable=False),
    sa.Column('changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('marked_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('announced_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['revision_id'], ['kb_revision.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kb_topic_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_topic_change_changed_at'), ['changed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_topic_change_topic_id'), ['topic_id'], unique=False)

    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_id', sa.Integer(), nullable=True))
        batch_op.create_index('ux_outbox_job_change', ['change_id', 'channel', 'recipient'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.drop_index('ux_outbox_job_change')
        batch_op.drop_column('change_id')

    with op.batch_alter_table('kb_topic_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_topic_change_topic_id'))
        batch_op.drop_index(batch_op.f('ix_kb_topic_change_changed_at'))

    op.drop_table('kb_topic_change')
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index('ix_subscription_topic_active')

    op.drop_table('subscription')
