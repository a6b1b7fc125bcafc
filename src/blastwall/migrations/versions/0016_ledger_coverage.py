"""The ledger covers the evidence tables: each row names the record that made it.

`evidence_items.removal_seq` is the `deleted` or `expired` record that removed an item's
bytes (beside `record_seq`, its `collected` record); `evidence_holds.record_seq` the
`hold_placed` record of a legal hold; `evidence_grants.record_seq` the `full_view_granted`
record of a grant. Rows made before are bound here, from the ledger: an item removed to
its last removal record, a hold to the last `hold_placed` record of its incident, a grant
to the record that granted its incident's full view to its principal. A row the ledger
does not account for stays unbound, and `blastwall evidence verify-ledger` names it.

Records written before this revision (`"v":1` in their body) are checked as before: their
body holds an item's hash, kind, source, size, name, media type and note, not the row's
every field, and the time of a removal, hold or grant is not the record's own.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-16
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removal_seq", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("evidence_holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_seq", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("evidence_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_seq", sa.BigInteger(), nullable=True))

    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE evidence_items SET removal_seq = (SELECT MAX(l.seq) FROM evidence_ledger l "
            "WHERE l.item_id = evidence_items.id AND l.action IN ('deleted', 'expired')) "
            "WHERE state <> 'kept'"
        )
    )
    bind.execute(
        sa.text(
            "UPDATE evidence_holds SET record_seq = (SELECT MAX(l.seq) FROM evidence_ledger l "
            "WHERE l.incident_id = evidence_holds.incident_id AND l.action = 'hold_placed')"
        )
    )
    granted: dict[tuple[int, str], int] = {}
    for seq, incident_id, body in bind.execute(
        sa.text(
            "SELECT seq, incident_id, body FROM evidence_ledger "
            "WHERE action = 'full_view_granted' ORDER BY seq"
        )
    ):
        try:
            to = json.loads(body).get("details", {}).get("to")
        except (ValueError, AttributeError):
            continue
        if isinstance(to, str) and incident_id is not None:
            granted[(incident_id, to)] = seq
    grants = bind.execute(sa.text("SELECT id, incident_id, principal FROM evidence_grants"))
    for grant_id, incident_id, principal in list(grants):
        seq = granted.get((incident_id, principal))
        if seq is not None:
            bind.execute(
                sa.text("UPDATE evidence_grants SET record_seq = :seq WHERE id = :id"),
                {"seq": seq, "id": grant_id},
            )


def downgrade() -> None:
    with op.batch_alter_table("evidence_grants", schema=None) as batch_op:
        batch_op.drop_column("record_seq")
    with op.batch_alter_table("evidence_holds", schema=None) as batch_op:
        batch_op.drop_column("record_seq")
    with op.batch_alter_table("evidence_items", schema=None) as batch_op:
        batch_op.drop_column("removal_seq")
