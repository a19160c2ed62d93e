"""knowledge base, staff accounts and the audit trail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 04:38:21.161342
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('object_type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('object_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_object_id'), ['object_id'], unique=False)

    op.create_table('kb_article',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('topic_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('published_revision_id', sa.Integer(), nullable=True),
    sa.Column('stale_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('stale_reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('topic_id', 'language', name='uq_kb_article_topic_language')
    )
    with op.batch_alter_table('kb_article', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_article_topic_id'), ['topic_id'], unique=False)

    op.create_table('kb_bot_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('kind', sa.Enum('fallback', 'not_helpful', 'handoff', name='failurekind', native_enum=False, length=19), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('topic_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('resolution', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kb_bot_failure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_bot_failure_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_bot_failure_kind'), ['kind'], unique=False)

    op.create_table('kb_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('article_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'in_review', 'published', 'archived', name='revisionstatus', native_enum=False, length=17), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('short_answer', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('legal_basis', sa.Text(), nullable=True),
    sa.Column('verified_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('master_revision_id', sa.Integer(), nullable=True),
    sa.Column('search_text', sa.Text(), server_default='', nullable=False),
    sa.Column('file_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('published_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('published_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['article_id'], ['kb_article.id'], ),
    sa.ForeignKeyConstraint(['master_revision_id'], ['kb_revision.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('article_id', 'number', name='uq_kb_revision_number')
    )
    with op.batch_alter_table('kb_revision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_revision_article_id'), ['article_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_revision_status'), ['status'], unique=False)

    # Articles and revisions point at each other: this constraint can only follow both tables.
    with op.batch_alter_table('kb_article', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_kb_article_published', 'kb_revision', ['published_revision_id'], ['id'])

    op.create_table('staff_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('role', sa.Enum('admin', 'supervisor', 'consultant', name='role', native_enum=False, length=18), nullable=False),
    sa.Column('office_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_sign_ins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_sign_in_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['office_code'], ['pid_office.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_user_username'), ['username'], unique=True)

    op.create_table('staff_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_session_token_hash'), ['token_hash'], unique=True)
        batch_op.create_index(batch_op.f('ix_staff_session_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_session_user_id'))
        batch_op.drop_index(batch_op.f('ix_staff_session_token_hash'))

    op.drop_table('staff_session')
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_user_username'))

    op.drop_table('staff_user')
    with op.batch_alter_table('kb_revision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_revision_status'))
        batch_op.drop_index(batch_op.f('ix_kb_revision_article_id'))

    with op.batch_alter_table('kb_article', schema=None) as batch_op:
        batch_op.drop_constraint('fk_kb_article_published', type_='foreignkey')
    op.drop_table('kb_revision')
    with op.batch_alter_table('kb_bot_failure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_bot_failure_kind'))
        batch_op.drop_index(batch_op.f('ix_kb_bot_failure_at'))

    op.drop_table('kb_bot_failure')
    with op.batch_alter_table('kb_article', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_article_topic_id'))

    op.drop_table('kb_article')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entry_object_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_at'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_actor'))

    op.drop_table('audit_entry')
