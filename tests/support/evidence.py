"""Helpers of the evidence and hunt tests: a data dir with a signing key, where checkpoints
are written outside the database, stored interactions, signals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from blastwall.evidence.ledger import make_key
from blastwall.evidence.witness import Witness
from blastwall.settings import get_settings
from blastwall.signals.models import Signal
from blastwall.telemetry.models import Interaction

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def evidence_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data dir of this test's own, with a signing key, seen by the settings."""
    data = tmp_path / "data"
    monkeypatch.setenv("BLASTWALL_DATA_DIR", str(data))
    # The test database is one connection shared by every session: one hunt thread.
    monkeypatch.setenv("BLASTWALL_HUNT_WORKERS", "1")
    get_settings.cache_clear()
    make_key(get_settings().signing_key_path)
    yield data
    get_settings.cache_clear()


def witness() -> Witness:
    """Where checkpoints go outside the database: the checkpoint file of the data dir that
    `evidence_dir` set up."""
    return Witness.of(get_settings())


def message(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def interaction(
    index: int,
    *,
    prompt: str = "hello",
    answer: str = "hi there",
    system: str | None = None,
    conversation: str | None = None,
    user: str | None = None,
    trace: str | None = None,
    operation: str = "chat",
    tool: str | None = None,
    tool_arguments: Any = None,
    tool_result: Any = None,
    at: datetime | None = None,
) -> Interaction:
    start = at or T0 + timedelta(seconds=index)
    return Interaction(
        trace_id=trace or f"{index:032x}",
        span_id=f"{index:016x}",
        system_id=system,
        name=operation,
        schema="genai",
        operation=operation,
        conversation_id=conversation,
        user_id=user,
        input_messages=[message("user", prompt)] if operation == "chat" else None,
        output_messages=[message("assistant", answer)] if operation == "chat" else None,
        tool_name=tool,
        tool_arguments=tool_arguments,
        tool_result=tool_result,
        content_policy="full",
        start_time=start,
        end_time=start + timedelta(milliseconds=300),
        latency_ms=300.0,
    )


def add(session: Session, rows: list[Interaction]) -> list[int]:
    session.add_all(rows)
    session.commit()
    return [r.id for r in rows]


def signal(session: Session, interaction_ids: list[int], system: str | None = None) -> int:
    row = Signal(
        source="detector",
        kind="prompt_injection",
        system_id=system,
        severity="high",
        summary="injection found",
        created_by="test",
        interaction_ids=interaction_ids,
    )
    session.add(row)
    session.commit()
    return row.id
