"""Content capture state per system.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import blastwall.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_capture",
        sa.Column("system_id", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("changed_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["systems.id"],
            name=op.f("fk_content_capture_system_id_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("system_id", name=op.f("pk_content_capture")),
    )


def downgrade() -> None:
    op.drop_table("content_capture")
