"""tickets, their messages and events, and the outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIXES = {
    'KRK-RONDO': 'KRK',
    'KRK-BASZTOWA': 'KRK',
    'KRK-CHLOPICKIEGO': 'KRK',
    'TARNOW': 'TAR',
    'NOWY-SACZ': 'NSA',
}


def upgrade() -> None:
    op.create_table('ticket_counter',
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('prefix', 'year')
    )
    op.create_table('ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.Enum('web', 'telegram', 'voice', 'sms', name='channel', native_enum=False, length=16, create_constraint=False), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('topic_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('office_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('status', sa.Enum('new', 'open', 'waiting', 'resolved', 'closed', name='ticketstatus', native_enum=False, length=16, create_constraint=False), nullable=False),
    sa.Column('priority', sa.Enum('normal', 'high', name='ticketpriority', native_enum=False, length=14, create_constraint=False), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('contact', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('sla_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('first_response_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['staff_user.id'], ),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['office_code'], ['pid_office.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index('ix_ticket_assignee_status', 'ticket', ['assignee_id', 'status'], unique=False)
    op.create_index(op.f('ix_ticket_conversation_id'), 'ticket', ['conversation_id'], unique=False)
    op.create_index('ix_ticket_queue', 'ticket', ['office_code', 'status', 'sla_due_at'], unique=False)
    op.create_table('ticket_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_ticket_event_ticket_id'), 'ticket_event', ['ticket_id'], unique=False)
    op.create_table('ticket_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.Enum('person', 'consultant', 'note', 'bot', name='ticketauthor', native_enum=False, length=18, create_constraint=False), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('delivery', sa.Enum('none', 'pending', 'sent', 'failed', 'unconfirmed', name='delivery', native_enum=False, length=19, create_constraint=False), nullable=False),
    sa.Column('delivery_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_user.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_ticket_message_ticket_id'), 'ticket_message', ['ticket_id'], unique=False)
    op.create_table('outbox_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Enum('web', 'telegram', 'voice', 'sms', name='channel', native_enum=False, length=16, create_constraint=False), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('actions', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('ticket_message_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', 'unconfirmed', name='outboxstatus', native_enum=False, length=19, create_constraint=False), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_message_id'], ['ticket_message.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_outbox_job_due', 'outbox_job', ['status', 'next_attempt_at'], unique=False)
    op.add_column('conversation_message', sa.Column('actions', sa.JSON(none_as_null=True), nullable=True))
    op.add_column('pid_office', sa.Column('ticket_prefix', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default='OPT'))
    op.add_column('pid_office', sa.Column('sla_hours', sa.Integer(), nullable=False, server_default='8'))
    # Numbers a caller can read out: the town, the year, a counter (the three Kraków points share one).
    offices = sa.table('pid_office', sa.column('code', sa.String), sa.column('ticket_prefix', sa.String))
    for code, prefix in PREFIXES.items():
        op.execute(offices.update().where(offices.c.code == code).values(ticket_prefix=prefix))


def downgrade() -> None:
    op.drop_column('pid_office', 'sla_hours')
    op.drop_column('pid_office', 'ticket_prefix')
    op.drop_column('conversation_message', 'actions')
    op.drop_index('ix_outbox_job_due', table_name='outbox_job')
    op.drop_table('outbox_job')
    op.drop_index(op.f('ix_ticket_message_ticket_id'), table_name='ticket_message')
    op.drop_table('ticket_message')
    op.drop_index(op.f('ix_ticket_event_ticket_id'), table_name='ticket_event')
    op.drop_table('ticket_event')
    op.drop_index('ix_ticket_queue', table_name='ticket')
    op.drop_index(op.f('ix_ticket_conversation_id'), table_name='ticket')
    op.drop_index('ix_ticket_assignee_status', table_name='ticket')
    op.drop_table('ticket')
    op.drop_table('ticket_counter')
