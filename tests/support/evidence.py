"""Helpers of the evidence and hunt tests: a data dir with a signing key, where checkpoints
are written outside the database, stored interactions, signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from blastwall.evidence.ledger import make_key
from blastwall.evidence.store import Vault
from blastwall.evidence.witness import Witness
from blastwall.settings import Settings
from blastwall.signals.models import Signal
from blastwall.telemetry.models import Interaction

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def evidence_dir(settings: Settings) -> Path:
    """The test's data dir (`settings`), with a signing key."""
    make_key(settings.signing_key_path)
    return settings.data_dir


def witness(data: Path) -> Witness:
    """Where checkpoints go outside the database: the checkpoint file of the data dir
    `data` (the `evidence_dir`)."""
    return Witness.of(Settings(data_dir=data))


def vault(data: Path) -> Vault:
    """The vault and signing key of the data dir `data` (the `evidence_dir`)."""
    return Vault.of(Settings(data_dir=data))


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
