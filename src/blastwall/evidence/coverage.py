"""The evidence tables as the ledger says they must be.

Replaying the records in order gives, for each item, the incident it is in, its fields as
its last `collected` record holds them, its state (kept, or `deleted` / `expired` by a
record) and the records that made it so; the legal holds in force (`hold_placed` not
followed by `hold_released`); the full-view grants (`full_view_granted`). The rows of
`evidence_items`, `evidence_holds` and `evidence_grants` are then compared with that: every
row has its records, every record's object has its row, fields and state agree.

Records since field binding (``"v":2``) hold everything a row says: a `collected` record's
``row`` holds every field of the item's row, and a removal, hold or grant row carries its
record's time. Earlier records (``"v":1``) are checked for what they hold: the item's hash,
kind, source, incident, and the size, name, media type and note of its collection.

Nothing here touches the database: `verify.py` reads the rows and feeds the records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from blastwall.evidence.models import EvidenceItem, FullViewGrant, LegalHold

__all__ = ["Replay", "item_fields"]

REMOVALS = ("deleted", "expired")
_V1_DETAILS = ("size", "name", "media_type", "note")


def item_fields(item: EvidenceItem) -> dict[str, Any]:
    """The fields of an item's row that its `collected` record binds (``row``)."""
    return {
        "incident": item.incident_id,
        "kind": item.kind,
        "sha256": item.sha256,
        "size": item.size,
        "media_type": item.media_type,
        "name": item.name,
        "source": item.source,
        "note": item.note,
        "collected_by": item.collected_by,
        "collected_at": item.collected_at.isoformat(),
    }


def _details(body: dict[str, Any]) -> dict[str, Any]:
    details = body.get("details")
    return details if isinstance(details, dict) else {}


def _bound_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What a `collected` record says of its item's row."""
    row = body.get("row")
    if isinstance(row, dict):
        return row
    details = _details(body)
    fields = {
        "incident": body.get("incident"),
        "sha256": body.get("item_hash"),
        "kind": body.get("kind"),
        "source": body.get("source"),
    }
    fields.update({k: details[k] for k in _V1_DETAILS if k in details})
    return fields


@dataclass(slots=True)
class _Item:
    collected: int
    incident: int | None
    fields: dict[str, Any]
    state: str = "kept"
    removal: int | None = None
    removal_at: str | None = None
    removal_v: int = 1
    moved: int | None = None


@dataclass(slots=True)
class _Act:
    """A hold or a grant as its record says."""

    seq: int
    reason: Any
    actor: Any
    at: Any
    v: int
    grant: Any = None


@dataclass
class Replay:
    """The evidence tables' expected state, built one record at a time. `partial`: the
    records are a segment that starts after the ledger's start (an export's check), so a
    record naming an item collected before it is not a problem."""

    partial: bool = False
    items: dict[int, _Item] = field(default_factory=dict)
    holds: dict[int, _Act] = field(default_factory=dict)
    grants: dict[tuple[int, str], _Act] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def feed(self, seq: int, body: dict[str, Any]) -> None:
        action = body.get("action")
        incident = body.get("incident")
        details = _details(body)
        version = body.get("v", 1) if isinstance(body.get("v"), int) else 1
        item_id = body.get("item")
        if isinstance(item_id, int):
            self._item(seq, str(action), item_id, incident, body, version)
        elif action == "hold_placed" and isinstance(incident, int):
            self.holds[incident] = _Act(
                seq, details.get("reason"), body.get("actor"), body.get("at"), version
            )
        elif action == "hold_released" and isinstance(incident, int):
            if self.holds.pop(incident, None) is None and not self.partial:
                self.problems.append(
                    f"record {seq}: lifts a legal hold on incident {incident} that no record placed"
                )
        elif action == "full_view_granted" and isinstance(incident, int):
            to = details.get("to")
            if isinstance(to, str):
                self.grants[(incident, to)] = _Act(
                    seq,
                    details.get("reason"),
                    body.get("actor"),
                    body.get("at"),
                    version,
                    details.get("grant"),
                )

    def _item(
        self,
        seq: int,
        action: str,
        item_id: int,
        incident: Any,
        body: dict[str, Any],
        version: int,
    ) -> None:
        known = self.items.get(item_id)
        if action == "collected":
            if known is not None and known.moved is None:
                self.problems.append(
                    f"record {seq}: collects item {item_id} again, though record "
                    f"{known.collected} collected it and no record moved it"
                )
            self.items[item_id] = _Item(seq, incident, _bound_fields(body))
            return
        if known is None:
            if not self.partial:
                self.problems.append(
                    f"record {seq}: names item {item_id}, which no earlier record collected"
                )
            return
        if known.moved is not None:
            self.problems.append(
                f"record {seq}: names item {item_id} after record {known.moved} moved it and "
                "before any record collected it again"
            )
        if action == "moved":
            known.moved = seq
        elif action in REMOVALS:
            if known.state != "kept":
                self.problems.append(
                    f"record {seq}: removes item {item_id}, which record {known.removal} "
                    "removed already"
                )
            known.state, known.removal = action, seq
            known.removal_at, known.removal_v = body.get("at"), version
        if body.get("item_hash") != known.fields.get("sha256") or incident != known.incident:
            self.problems.append(
                f"record {seq}: names item {item_id} with another hash or incident than "
                f"record {known.collected}, which collected it"
            )

    # -- the rows -----------------------------------------------------------------------

    def check_items(self, rows: Iterable[EvidenceItem], *, incident: int | None) -> list[str]:
        """Every row against its records; every item the ledger holds (of `incident`, or
        all) against its row."""
        problems: list[str] = []
        seen: set[int] = set()
        for row in rows:
            seen.add(row.id)
            known = self.items.get(row.id)
            if known is None:
                problems.append(
                    f"item {row.id} (incident {row.incident_id}): no ledger record "
                    f"{'of this incident ' if self.partial else ''}collected it — the row was "
                    "added or changed outside Blastwall"
                )
                continue
            problems += _item_differences(row, known)
        for item_id, known in sorted(self.items.items()):
            if item_id in seen or (incident is not None and known.incident != incident):
                continue
            problems.append(
                f"item {item_id}: record {known.collected} collected it into incident "
                f"{known.incident}, and the evidence table has no such row — it was removed "
                "outside Blastwall"
            )
        return problems

    def check_holds(self, rows: Iterable[LegalHold], *, incident: int | None) -> list[str]:
        problems: list[str] = []
        seen: set[int] = set()
        for row in rows:
            seen.add(row.incident_id)
            where = f"legal hold on incident {row.incident_id}"
            act = self.holds.get(row.incident_id)
            if act is None:
                problems.append(
                    f"{where}: no ledger record placed it (or the last one lifted it) — the "
                    "row was added outside Blastwall"
                )
                continue
            wrong = _differences(
                act,
                seq=row.record_seq,
                reason=row.reason,
                actor=row.placed_by,
                at=row.placed_at.isoformat(),
            )
            if wrong:
                problems.append(f"{where}: {', '.join(wrong)} differ from record {act.seq}")
        for held, act in sorted(self.holds.items()):
            if held in seen or (incident is not None and held != incident):
                continue
            problems.append(
                f"incident {held}: record {act.seq} placed a legal hold that no record lifted, "
                "and the hold's row is gone — removed outside Blastwall"
            )
        return problems

    def check_grants(self, rows: Iterable[FullViewGrant], *, incident: int | None) -> list[str]:
        problems: list[str] = []
        seen: set[tuple[int, str]] = set()
        for row in rows:
            key = (row.incident_id, row.principal)
            seen.add(key)
            where = f"full-view grant {row.id} (incident {row.incident_id}, to {row.principal})"
            act = self.grants.get(key)
            if act is None:
                problems.append(
                    f"{where}: no ledger record granted it — the row was added or changed "
                    "outside Blastwall"
                )
                continue
            wrong = _differences(
                act,
                seq=row.record_seq,
                reason=row.reason,
                actor=row.granted_by,
                at=row.granted_at.isoformat(),
                grant=row.id,
            )
            if wrong:
                problems.append(f"{where}: {', '.join(wrong)} differ from record {act.seq}")
        for (granted, to), act in sorted(self.grants.items()):
            if (granted, to) in seen or (incident is not None and granted != incident):
                continue
            problems.append(
                f"incident {granted}: record {act.seq} granted {to} the full view, and the "
                "grant's row is gone — removed outside Blastwall"
            )
        return problems


def _differences(act: _Act, *, seq: int | None, **row: Any) -> list[str]:
    """The names of the row's fields that its record contradicts (`at` and `grant` only
    for records since field binding)."""
    wrong = ["its record"] if seq != act.seq else []
    for name, value in row.items():
        if name in ("at", "grant") and act.v < 2:
            continue
        if getattr(act, name) != value:
            wrong.append({"actor": "who", "at": "time", "grant": "id"}.get(name, name))
    return wrong


def _item_differences(row: EvidenceItem, known: _Item) -> list[str]:
    where = f"item {row.id}"
    problems: list[str] = []
    if known.moved is not None:
        problems.append(
            f"{where}: record {known.moved} moved it out of incident {known.incident}, and no "
            "record collected it elsewhere"
        )
    if row.record_seq != known.collected:
        problems.append(
            f"{where}: its row names record {row.record_seq}; the ledger's last collection of "
            f"it is record {known.collected}"
        )
    actual = item_fields(row)
    wrong = [k for k, v in known.fields.items() if actual.get(k) != v]
    if wrong:
        problems.append(
            f"{where}: {', '.join(wrong)} of its row differ from record {known.collected}, "
            "which collected it — changed outside Blastwall"
        )
    if row.state != known.state:
        said = (
            "no record removed it"
            if known.state == "kept"
            else f"record {known.removal} says it was {known.state}"
        )
        problems.append(f"{where}: its state is '{row.state}', but {said}")
    elif known.state != "kept":
        if row.removal_seq != known.removal:
            problems.append(
                f"{where}: its row names removal record {row.removal_seq}; the ledger's is "
                f"record {known.removal}"
            )
        if row.removed_at is None or (
            known.removal_v >= 2 and row.removed_at.isoformat() != known.removal_at
        ):
            problems.append(f"{where}: its removal time differs from record {known.removal}")
    elif row.removed_at is not None or row.removal_seq is not None:
        problems.append(f"{where}: kept, yet its row has a removal time or record")
    return problems
