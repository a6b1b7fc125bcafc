"""The public status page: its components, the status incidents and maintenances it shows
with their updates, and its subscribers.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import blastwall.db

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
PHASE = sa.Enum(
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "scheduled",
    "in_progress",
    "verifying",
    "completed",
    name="phase",
    native_enum=False,
    length=20,
)
COMPONENT_STATUS = sa.Enum(
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    name="componentstatus",
    native_enum=False,
    length=30,
)


def upgrade() -> None:
    op.create_table(
        "status_components",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("group", sa.String(length=200), nullable=True),
        sa.Column("systems", JSON, nullable=False),
        sa.Column("show_systems", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_components")),
    )
    op.create_table(
        "status_incidents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("incident", "maintenance", name="statuskind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("source_incident_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("status", PHASE, nullable=False),
        sa.Column(
            "impact",
            sa.Enum(
                "none",
                "minor",
                "major",
                "critical",
                "maintenance",
                name="impact",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("component_status", COMPONENT_STATUS, nullable=False),
        sa.Column("component_ids", JSON, nullable=False),
        sa.Column("created_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("monitoring_at", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("scheduled_for", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("scheduled_until", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_incidents")),
        sa.UniqueConstraint(
            "source_incident_id", name=op.f("uq_status_incidents_source_incident_id")
        ),
    )
    with op.batch_alter_table("status_incidents", schema=None) as batch_op:
        batch_op.create_index("ix_status_incidents_created_at", ["created_at"], unique=False)

    op.create_table(
        "status_incident_updates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("status_incident_id", sa.String(length=40), nullable=False),
        sa.Column("source_update_id", sa.Integer(), nullable=True),
        sa.Column("status", PHASE, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("component_status", COMPONENT_STATUS, nullable=False),
        sa.Column("created_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["status_incident_id"],
            ["status_incidents.id"],
            name=op.f("fk_status_incident_updates_status_incident_id_status_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_incident_updates")),
        sa.UniqueConstraint(
            "source_update_id", name=op.f("uq_status_incident_updates_source_update_id")
        ),
    )
    with op.batch_alter_table("status_incident_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_status_incident_updates_status_incident_id"),
            ["status_incident_id"],
            unique=False,
        )

    op.create_table(
        "status_subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("email", "webhook", name="subscriberkind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("address", sa.String(length=2000), nullable=False),
        sa.Column("component_ids", JSON, nullable=False),
        sa.Column("confirm_hash", sa.String(length=64), nullable=False),
        sa.Column("unsubscribe_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_subscribers")),
        sa.UniqueConstraint("confirm_hash", name=op.f("uq_status_subscribers_confirm_hash")),
        sa.UniqueConstraint(
            "unsubscribe_token", name=op.f("uq_status_subscribers_unsubscribe_token")
        ),
    )


def downgrade() -> None:
    op.drop_table("status_subscribers")
    with op.batch_alter_table("status_incident_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_incident_updates_status_incident_id"))
    op.drop_table("status_incident_updates")
    with op.batch_alter_table("status_incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_status_incidents_created_at")
    op.drop_table("status_incidents")
    op.drop_table("status_components")
