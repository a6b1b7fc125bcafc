"""Severity from evidence: what a candidate's signals show, and its escalation.

A candidate keeps what its signals showed as they joined (`candidates.evidence`: people's
reports and the conversations they corroborate, successes against blocked attempts, what
leaked, the highest detector confidence, the system's baseline rate) and, when it kept
growing below the threshold, when and to whom it was escalated (`escalated_at`,
`escalated_to`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import blastwall.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("evidence", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(
            sa.Column("escalated_at", blastwall.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("escalated_to", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_column("escalated_to")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("evidence")
