"""Status updates in the "what we know" form, the reminders fired for their cadence, and the
snoozes of a cadence.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import blastwall.db

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "status_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("what_happened", sa.Text(), nullable=False),
        sa.Column("what_we_are_testing", sa.Text(), nullable=False),
        sa.Column("what_we_are_doing", sa.Text(), nullable=False),
        sa.Column("what_we_dont_know", sa.Text(), nullable=False),
        sa.Column("next_update_at", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("impact", sa.String(length=20), nullable=False),
        sa.Column("component_status", sa.String(length=30), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("submitted_by", sa.String(length=200), nullable=True),
        sa.Column("approver", sa.String(length=200), nullable=True),
        sa.Column("published_by", sa.String(length=200), nullable=True),
        sa.Column("published_at", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("no_change_of", sa.Integer(), nullable=True),
        sa.Column("rendered", JSON, nullable=False),
        sa.Column("created_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_status_updates_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["no_change_of"],
            ["status_updates.id"],
            name=op.f("fk_status_updates_no_change_of_status_updates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_updates")),
    )
    op.create_index(
        "ix_status_updates_incident",
        "status_updates",
        ["incident_id", "audience", "state", "id"],
        unique=False,
    )
    op.create_table(
        "update_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=40), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("due_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_update_reminders_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_update_reminders")),
        sa.UniqueConstraint("key", name=op.f("uq_update_reminders_key")),
    )
    op.create_index(
        op.f("ix_update_reminders_incident_id"), "update_reminders", ["incident_id"], unique=False
    )
    op.create_table(
        "cadence_snoozes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=40), nullable=False),
        sa.Column("until", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("snoozed_by", sa.String(length=200), nullable=False),
        sa.Column("snoozed_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_cadence_snoozes_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cadence_snoozes")),
    )
    op.create_index(
        "ix_cadence_snoozes_incident", "cadence_snoozes", ["incident_id", "audience"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_cadence_snoozes_incident", table_name="cadence_snoozes")
    op.drop_table("cadence_snoozes")
    op.drop_index(op.f("ix_update_reminders_incident_id"), table_name="update_reminders")
    op.drop_table("update_reminders")
    op.drop_index("ix_status_updates_incident", table_name="status_updates")
    op.drop_table("status_updates")
