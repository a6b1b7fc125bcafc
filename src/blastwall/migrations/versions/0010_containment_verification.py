"""Containment verification and known prompt and model versions.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import blastwall.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("containment_actions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("grace_seconds", sa.Integer(), nullable=False, server_default="30")
        )
        batch_op.add_column(sa.Column("verification", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("verified_at", blastwall.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("verification_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("breach_signal_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "watched_to_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
    op.create_table(
        "component_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("component_id", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=2000), nullable=False),
        sa.Column("content_hash", sa.String(length=80), nullable=True),
        sa.Column("since", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["systems.id"],
            name=op.f("fk_component_versions_system_id_systems"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["change_id"], ["changes.id"], name=op.f("fk_component_versions_change_id_changes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_component_versions")),
    )
    op.create_index(
        "ix_component_versions_component",
        "component_versions",
        ["system_id", "kind", "component_id", "since"],
    )


def downgrade() -> None:
    op.drop_index("ix_component_versions_component", table_name="component_versions")
    op.drop_table("component_versions")
    with op.batch_alter_table("containment_actions", schema=None) as batch_op:
        batch_op.drop_column("watched_to_id")
        batch_op.drop_column("breach_signal_id")
        batch_op.drop_column("verification_note")
        batch_op.drop_column("verified_at")
        batch_op.drop_column("verification")
        batch_op.drop_column("grace_seconds")
