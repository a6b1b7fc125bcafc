"""Held outputs: outputs a guard held back under quarantine, for review.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import blastwall.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_outputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=100), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("conversation_id", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("held_by", sa.String(length=200), nullable=False),
        sa.Column("held_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["system_id"], ["systems.id"], name=op.f("fk_held_outputs_system_id_systems")
        ),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["containment_actions.id"],
            name=op.f("fk_held_outputs_action_id_containment_actions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_outputs")),
    )
    with op.batch_alter_table("held_outputs", schema=None) as batch_op:
        batch_op.create_index("ix_held_outputs_system_state", ["system_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("held_outputs", schema=None) as batch_op:
        batch_op.drop_index("ix_held_outputs_system_state")
    op.drop_table("held_outputs")
