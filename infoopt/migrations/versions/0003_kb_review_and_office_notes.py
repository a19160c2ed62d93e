"""two-person publishing of knowledge-base revisions; notes on the PID points

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

The points at Basztowa 22, Chłopickiego 4 and Nowy Sącz were run by the "Małopolska otwarta"
project, which ended in 2023: until INFO.OPT staff confirm them they are presented as such.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNCONFIRMED = (
    "Do potwierdzenia w INFO.OPT (12 210 20 20): punkt działał w projekcie „Małopolska otwarta”, "
    "zakończonym w 2023 r."
)
UNCONFIRMED_CODES = ("KRK-BASZTOWA", "KRK-CHLOPICKIEGO", "NOWY-SACZ")

_PUBLISH_REVIEW = sa.Enum(
    "second_person", "single_admin", "article_files", "rollback",
    name="publishreview", native_enum=False, length=21, create_constraint=False,
)


def upgrade() -> None:
    with op.batch_alter_table("kb_revision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submitted_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("submitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("returned_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("returned_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("return_comment", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True)
        )
        batch_op.add_column(sa.Column("publish_review", _PUBLISH_REVIEW, nullable=True))
    # Everything published so far came from the article files.
    op.execute(
        "UPDATE kb_revision SET publish_review = 'article_files' "
        "WHERE published_at IS NOT NULL AND file_hash IS NOT NULL"
    )
    with op.batch_alter_table("pid_office", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.String(length=500), nullable=True))
    office = sa.table("pid_office", sa.column("code", sa.String), sa.column("note", sa.String))
    op.execute(office.update().where(office.c.code.in_(UNCONFIRMED_CODES)).values(note=UNCONFIRMED))


def downgrade() -> None:
    with op.batch_alter_table("pid_office", schema=None) as batch_op:
        batch_op.drop_column("note")
    with op.batch_alter_table("kb_revision", schema=None) as batch_op:
        for name in ("publish_review", "return_comment", "returned_at", "returned_by", "submitted_at", "submitted_by"):
            batch_op.drop_column(name)
