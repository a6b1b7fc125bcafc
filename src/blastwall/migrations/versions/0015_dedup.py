"""Nothing stored twice: spans once per system, signal requests by their Idempotency-Key.

Interactions and context spans get a unique index on (trace id, span id, system id), the
system id of a span of no known system counting as '' (a unique index holds NULLs apart).
It replaces the index on the trace id alone, whose look-ups it serves. Spans stored twice
before (an exporter's retry of a batch committed but not acknowledged) are merged first:
the lowest id of each is kept, and what pointed at the others (a signal's
`interaction_ids`, a held output, a retro-hunt match) points at it instead. Evidence already
collected is left as it is: its ledger covers it.

`signal_requests` remembers each `POST /signals` and `POST /reports` sent with an
`Idempotency-Key`: the principal, the key, a hash of the body and the signal it created.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-15
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import blastwall.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SPAN_TABLES = ("interactions", "context_spans")
BATCH = 500


def _duplicates(connection: sa.Connection, table: str) -> dict[int, int]:
    """Each id of a span stored before under the same key -> the lowest id of that key."""
    rows = connection.execute(
        sa.text(
            f"SELECT t.id, d.keep FROM {table} t JOIN ("
            f"SELECT trace_id, span_id, coalesce(system_id, '') AS system, min(id) AS keep "
            f"FROM {table} GROUP BY trace_id, span_id, coalesce(system_id, '') "
            "HAVING count(*) > 1) d ON t.trace_id = d.trace_id AND t.span_id = d.span_id "
            "AND coalesce(t.system_id, '') = d.system WHERE t.id > d.keep"
        )
    )
    return {int(later): int(keep) for later, keep in rows}


def _repoint_signals(connection: sa.Connection, moved: dict[int, int]) -> None:
    signals = sa.table("signals", sa.column("id", sa.Integer), sa.column("interaction_ids", JSON))
    updates: list[dict[str, Any]] = []
    found = connection.execute(
        sa.select(signals.c.id, signals.c.interaction_ids).where(
            signals.c.interaction_ids.is_not(None)
        )
    )
    for signal_id, ids in found:
        if not isinstance(ids, list) or not any(moved.get(i) for i in ids):
            continue
        merged = list(dict.fromkeys(moved.get(i, i) for i in ids))
        updates.append({"signal": signal_id, "ids": merged})
    for start in range(0, len(updates), BATCH):
        connection.execute(
            signals.update()
            .where(signals.c.id == sa.bindparam("signal"))
            .values(interaction_ids=sa.bindparam("ids", type_=JSON)),
            updates[start : start + BATCH],
        )


def _merge_spans(connection: sa.Connection, table: str) -> None:
    moved = _duplicates(connection, table)
    if not moved:
        return
    pairs = [{"later": later, "keep": keep} for later, keep in moved.items()]
    if table == "interactions":
        _repoint_signals(connection, moved)
        for statement in (
            # an output held twice under one incident, once for each copy: the copy goes
            "DELETE FROM quarantined_outputs WHERE interaction_id = :later AND incident_id IN "
            "(SELECT incident_id FROM quarantined_outputs WHERE interaction_id = :keep)",
            "UPDATE quarantined_outputs SET interaction_id = :keep WHERE interaction_id = :later",
            "UPDATE hunt_matches SET interaction_id = :keep WHERE interaction_id = :later",
        ):
            for start in range(0, len(pairs), BATCH):
                connection.execute(sa.text(statement), pairs[start : start + BATCH])
    ids = [{"id": later} for later in moved]
    for start in range(0, len(ids), BATCH):
        connection.execute(
            sa.text(f"DELETE FROM {table} WHERE id = :id"), ids[start : start + BATCH]
        )


def upgrade() -> None:
    connection = op.get_bind()
    for table in SPAN_TABLES:
        _merge_spans(connection, table)
        op.drop_index(f"ix_{table}_trace", table_name=table)
        op.create_index(
            f"uq_{table}_span",
            table,
            ["trace_id", "span_id", sa.text("coalesce(system_id, '')")],
            unique=True,
        )
    op.create_table(
        "signal_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=True),
        sa.Column("created_at", blastwall.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_id"],
            ["signals.id"],
            name=op.f("fk_signal_requests_signal_id_signals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_requests")),
        sa.UniqueConstraint(
            "principal", "route", "idempotency_key", name=op.f("uq_signal_requests_principal")
        ),
    )
    with op.batch_alter_table("signal_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signal_requests_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("signal_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signal_requests_created_at"))
    op.drop_table("signal_requests")
    for table in SPAN_TABLES:
        op.drop_index(f"uq_{table}_span", table_name=table)
        op.create_index(f"ix_{table}_trace", table, ["trace_id"], unique=False)
