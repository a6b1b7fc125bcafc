"""Correlation by trace and conversation; evidence of repeats.

A candidate keeps the reasons of its archetype and of the signals joined to it by a shared
trace or conversation (`candidates.reasons`); a signal says what joined it
(`signals.linked_by`); a signal group counts the interactions its repeats added to an
incident's evidence (`signal_groups.evidence_count`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reasons", JSON, nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("signal_groups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("evidence_count", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("linked_by", sa.String(length=250), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_column("linked_by")
    with op.batch_alter_table("signal_groups", schema=None) as batch_op:
        batch_op.drop_column("evidence_count")
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_column("reasons")
