"""Playbooks: checklist steps of the playbooks attached to incidents.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import blastwall.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checklist_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("playbook_id", sa.String(length=80), nullable=False),
        sa.Column("playbook_version", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(length=80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("control", sa.String(length=40), nullable=True),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("options", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("completed_by", sa.String(length=200), nullable=True),
        sa.Column("completed_at", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attached_by", sa.String(length=200), nullable=False),
        sa.Column("attached_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_checklist_steps_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checklist_steps")),
        sa.UniqueConstraint(
            "incident_id",
            "playbook_id",
            "step_id",
            name=op.f("uq_checklist_steps_incident_id_playbook_id_step_id"),
        ),
    )
    with op.batch_alter_table("checklist_steps", schema=None) as batch_op:
        batch_op.create_index("ix_checklist_incident", ["incident_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("checklist_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_checklist_incident")
    op.drop_table("checklist_steps")
