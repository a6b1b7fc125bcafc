"""Evidence tables: items, the ledger and its checkpoints, legal holds, full-view grants,
and retro-hunts with their matches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow
from blastwall.evidence.schemas import HuntMode

BigId = BigInteger().with_variant(Integer(), "sqlite")


class EvidenceItem(Base):
    """One preserved thing of an incident; its bytes are in the vault under `sha256`.

    Bound to the ledger: `record_seq` is the `collected` record that holds the row's fields
    (its last, after a merge moved it), `removal_seq` the `deleted` or `expired` record that
    removed its bytes; `blastwall evidence verify-ledger` replays the ledger against the row."""

    __tablename__ = "evidence_items"
    __table_args__ = (
        Index("ix_evidence_items_incident", "incident_id", "id"),
        Index("ix_evidence_items_source", "incident_id", "kind", "source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    kind: Mapped[str] = mapped_column(String(30))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(300))
    note: Mapped[str] = mapped_column(Text, default="")
    collected_by: Mapped[str] = mapped_column(String(200))
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    record_seq: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20), default="kept")  # kept, expired, deleted
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    removal_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)


class LedgerRecord(Base):
    """One append-only line of the evidence ledger. `body` is the canonical JSON that is
    hashed; the other columns repeat what it says, for queries, and are checked against it."""

    __tablename__ = "evidence_ledger"
    __table_args__ = (
        Index("ix_evidence_ledger_incident", "incident_id", "seq"),
        Index("ix_evidence_ledger_item", "item_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    body_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64), unique=True)
    action: Mapped[str] = mapped_column(String(30))
    incident_id: Mapped[int | None] = mapped_column(Integer, default=None)
    item_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerHead(Base):
    """The last record's number and hash: one row, locked by each append."""

    __tablename__ = "evidence_ledger_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class Checkpoint(Base):
    """A signed statement of the ledger's head: `message` holds the exact signed bytes."""

    __tablename__ = "evidence_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(128))
    key_fingerprint: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LegalHold(Base):
    """An incident under legal hold: none of its evidence may be deleted or expire. Bound to
    its `hold_placed` record (`record_seq`)."""

    __tablename__ = "evidence_holds"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(String(200))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    record_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)


class FullViewGrant(Base):
    """A person allowed to see an incident's evidence unredacted. Bound to its
    `full_view_granted` record (`record_seq`)."""

    __tablename__ = "evidence_grants"
    __table_args__ = (UniqueConstraint("incident_id", "principal"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    principal: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    record_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)


class Hunt(Base):
    """A retro-hunt over stored interactions: its query, progress and summary."""

    __tablename__ = "hunts"

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[HuntMode] = mapped_column(enum_type(HuntMode, 10))  # pattern, text, canary
    query: Mapped[str] = mapped_column(String(2000))
    system_id: Mapped[str | None] = mapped_column(String(100), default=None)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    state: Mapped[str] = mapped_column(String(10), default="queued")  # running, done, failed
    scanned: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    match_count: Mapped[int] = mapped_column(Integer, default=0)
    method: Mapped[str] = mapped_column(String(40), default="")
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class HuntMatch(Base):
    """One interaction a hunt found, with where the match was and a masked excerpt."""

    __tablename__ = "hunt_matches"
    __table_args__ = (Index("ix_hunt_matches_hunt", "hunt_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hunt_id: Mapped[int] = mapped_column(ForeignKey("hunts.id", ondelete="CASCADE"))
    interaction_id: Mapped[int] = mapped_column(BigInteger)
    field: Mapped[str] = mapped_column(String(40))
    excerpt: Mapped[str] = mapped_column(Text)
    trace_id: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str | None] = mapped_column(String(200), default=None)
    user_id: Mapped[str | None] = mapped_column(String(200), default=None)
    system_id: Mapped[str | None] = mapped_column(String(100), default=None)
    tool_name: Mapped[str | None] = mapped_column(String(200), default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
