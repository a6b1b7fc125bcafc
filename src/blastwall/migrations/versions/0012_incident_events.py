"""Incidents kept by events: the mitigated milestone; checklist steps linked to actions.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import blastwall.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mitigated_at", blastwall.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("checklist_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("action_id", sa.Integer(), nullable=True))
    # Incidents past mitigation: the first move to recovering on their timeline, or else
    # their resolution.
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE incidents SET mitigated_at = COALESCE("
            "(SELECT MIN(t.at) FROM timeline_entries t WHERE t.incident_id = incidents.id "
            "AND t.kind = 'status_changed' AND t.text LIKE :recovering), resolved_at) "
            "WHERE status IN ('recovering', 'resolved', 'closed')"
        ),
        {"recovering": "Status % → recovering%"},
    )


def downgrade() -> None:
    with op.batch_alter_table("checklist_steps", schema=None) as batch_op:
        batch_op.drop_column("action_id")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("mitigated_at")
