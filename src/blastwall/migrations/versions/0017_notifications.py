"""Notifications: channels, the outbox and each delivery's receipt.

`notification_channels` holds each channel's notifier kind and settings (its secrets
apart); `notification_outbox` one message per idempotency key, written in the transaction of
what it tells of and leased by the delivery loop while it sends; `notification_attempts`
the receipt of every try.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import blastwall.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("secrets", JSON, nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_notification_channels_name")),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", blastwall.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_notification_outbox_key")),
    )
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_outbox_channel"), ["channel"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notification_outbox_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index(
            "ix_notification_outbox_state_next_attempt_at",
            ["state", "next_attempt_at"],
            unique=False,
        )
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=100), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["notification_outbox.id"],
            name=op.f("fk_notification_attempts_message_id_notification_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_attempts")),
    )
    with op.batch_alter_table("notification_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_attempts_message_id"), ["message_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("notification_attempts")
    op.drop_table("notification_outbox")
    op.drop_table("notification_channels")
