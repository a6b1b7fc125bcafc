"""The affected report's parts: one row per interaction, the totals per tool (calls, side
effects and the sums of their numeric arguments per currency), the conversations and users,
the report's head in words and its CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from blastwall.containment.schemas import Affected, AffectedRow, ArgumentSum, ToolTotal
from blastwall.containment.tool_access import DeclaredTool, ToolInventory
from blastwall_guard.names import tool_key

_CURRENCY_KEYS = frozenset({"currency", "currency-code", "ccy"})


def report_row(row: Any, inventory: ToolInventory) -> AffectedRow:
    tool = row.tool_name
    writes = tool is not None and inventory.tool(row.system_id, tool).writes
    return AffectedRow(
        interaction_id=row.id,
        system_id=row.system_id,
        at=row.start_time,
        operation=row.operation,
        conversation_id=row.conversation_id,
        user_id=row.user_id,
        agent=row.agent_name,
        tool=tool,
        tool_arguments=row.tool_arguments,
        tool_result=row.tool_result,
        error_type=row.error_type,
        side_effect=writes and row.error_type is None,
        quarantined=False,
    )


@dataclass
class _Tally:
    declared: DeclaredTool
    system_id: str | None
    names: set[str] = field(default_factory=set)
    calls: int = 0
    failed: int = 0
    side_effects: int = 0
    sums: dict[tuple[str, str | None], list[Any]] = field(default_factory=dict)

    def add(self, row: AffectedRow) -> None:
        assert row.tool is not None
        self.names.add(row.tool)
        self.calls += 1
        self.failed += row.error_type is not None
        if not row.side_effect:
            return
        self.side_effects += 1
        arguments = row.tool_arguments if isinstance(row.tool_arguments, dict) else {}
        currency = next(
            (
                v.strip().upper()
                for k, v in arguments.items()
                if tool_key(k) in _CURRENCY_KEYS and isinstance(v, str) and v.strip()
            ),
            None,
        )
        for name, value in arguments.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            total = self.sums.setdefault((name, currency), [Decimal(0), 0, True])
            total[0] += Decimal(str(value))
            total[1] += 1
            total[2] = total[2] and isinstance(value, int)

    def out(self) -> ToolTotal:
        return ToolTotal(
            system_id=self.system_id,
            tool=self.declared.name,
            names=sorted(self.names),
            access=self.declared.access,
            permissions=list(self.declared.permissions),
            writes=self.declared.writes,
            calls=self.calls,
            failed=self.failed,
            side_effects=self.side_effects,
            sums=[
                ArgumentSum(
                    argument=name,
                    currency=currency,
                    total=int(total) if whole else float(total),
                    side_effects=n,
                )
                for (name, currency), (total, n, whole) in sorted(
                    self.sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
                )
            ],
        )


def tool_totals(
    rows: list[AffectedRow], inventory: ToolInventory
) -> tuple[list[ToolTotal], list[str]]:
    """Per tool of each system: calls, failed calls, side effects and their sums; and a note
    for each tool counted as writing for want of declared permissions."""
    tallies: dict[tuple[str | None, str], _Tally] = {}
    for row in rows:
        if row.tool is None:
            continue
        key = (row.system_id, tool_key(row.tool))
        if key not in tallies:
            tallies[key] = _Tally(inventory.tool(row.system_id, row.tool), row.system_id)
        tallies[key].add(row)
    totals = sorted(
        (t.out() for t in tallies.values()),
        key=lambda t: (-t.side_effects, -t.calls, t.system_id or "", t.tool),
    )
    notes = [
        f"{t.declared.name} ({t.system_id or 'no system'}): {t.declared.why}"
        for t in tallies.values()
        if t.declared.why
    ]
    return totals, sorted(notes)


def conversations(rows: list[AffectedRow]) -> list[dict[str, Any]]:
    conversations: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r.at, r.interaction_id)):
        if not row.conversation_id:
            continue
        entry = conversations.setdefault(
            row.conversation_id,
            {
                "conversation_id": row.conversation_id,
                "user_id": row.user_id,
                "first": row.at,
                "last": row.at,
                "interactions": 0,
                "calls": 0,
                "side_effects": 0,
            },
        )
        entry["last"] = row.at
        entry["interactions"] += 1
        entry["calls"] += int(row.tool is not None)
        entry["side_effects"] += int(row.side_effect)
    return list(conversations.values())


def users(rows: list[AffectedRow]) -> list[dict[str, Any]]:
    users: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r.at, r.interaction_id)):
        if not row.user_id:
            continue
        user = users.setdefault(
            row.user_id, {"user_id": row.user_id, "conversations": set(), "interactions": 0}
        )
        user["interactions"] += 1
        if row.conversation_id:
            user["conversations"].add(row.conversation_id)
    return [{**u, "conversations": len(u["conversations"])} for u in users.values()]


def totals_lines(affected: Affected) -> list[str]:
    """The report's head in words, one line per tool (sums per currency), then the notes."""
    lines: list[str] = []
    for t in affected.totals:
        line = f"{t.tool} ({t.system_id}, {t.access}): {t.calls} call(s)"
        line += f", {t.failed} failed" if t.failed else ""
        line += f", {t.side_effects} side effect(s)" if t.writes else ""
        by_currency: dict[str | None, list[str]] = {}
        for s in t.sums:
            by_currency.setdefault(s.currency, []).append(f"{s.argument} {s.total}")
        for currency, sums in by_currency.items():
            line += f"; {currency + ': ' if currency else ''}{', '.join(sums)}"
        lines.append(line)
    return lines + [f"note: {n}" for n in affected.notes]


CSV_COLUMNS = (
    "interaction_id",
    "system_id",
    "at",
    "operation",
    "conversation_id",
    "user_id",
    "agent",
    "tool",
    "tool_arguments",
    "tool_result",
    "error_type",
    "side_effect",
    "quarantined",
)


def to_csv(affected: Affected) -> str:
    """One line per interaction, tool arguments and results as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in affected.interactions:
        data = row.model_dump(mode="json")
        writer.writerow(
            orjson.dumps(data[c]).decode()
            if c in ("tool_arguments", "tool_result") and data[c] is not None
            else ("" if data[c] is None else data[c])
            for c in CSV_COLUMNS
        )
    return buffer.getvalue()
