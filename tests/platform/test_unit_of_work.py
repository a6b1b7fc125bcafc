"""A change and its audit record are one transaction: work killed between the two leaves
neither, work that ends leaves both. Through the CLI (a process killed outright) and the
API (a route whose audit record cannot be written). On SQLite; the API case on PostgreSQL
too when BLASTWALL_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from blastwall.audit import service as audit_service
from blastwall.audit.models import AuditEntry
from blastwall.db import Database
from blastwall.incidents.models import Incident
from tests.conftest import Clients

KILL_IN_AUDIT = """
import os, sys
from blastwall.audit import service
from blastwall.cli import main

def killed(*args, **kwargs):
    os._exit(9)  # the change is flushed; the process dies before its commit

if os.environ.get("KILL_IN_AUDIT"):
    service.record = killed
sys.argv = ["blastwall", *sys.argv[1:]]
main()
"""


def _cli(data: Path, *args: str, kill: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BLASTWALL_DATA_DIR": str(data)}
    env.pop("BLASTWALL_DATABASE_URL", None)
    if kill:
        env["KILL_IN_AUDIT"] = "1"
    return subprocess.run(
        [sys.executable, "-c", KILL_IN_AUDIT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _counts(data: Path) -> tuple[int, int]:
    db = Database.from_url(f"sqlite:///{data}/blastwall.db")
    try:
        with db.session(read_only=True) as session:
            incidents = session.scalar(select(func.count(Incident.id))) or 0
            audited = (
                session.scalar(
                    select(func.count(AuditEntry.id)).where(
                        AuditEntry.route == "incident open", AuditEntry.status_code == 0
                    )
                )
                or 0
            )
            return incidents, audited
    finally:
        db.engine.dispose()


def test_cli_change_killed_before_its_audit_record_leaves_neither(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _cli(data, "init").returncode == 0
    opening = ("incident", "open", "--title", "Leak", "--archetype", "data_exfiltration")
    killed = _cli(data, *opening, "--severity", "SEV2", kill=True)
    assert killed.returncode == 9, killed.stderr
    assert _counts(data) == (0, 0)
    done = _cli(data, *opening, "--severity", "SEV2")
    assert done.returncode == 0, done.stderr
    assert _counts(data) == (1, 1)


def test_api_change_whose_audit_record_fails_is_not_stored(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = clients.headers("admin")
    client = TestClient(clients.client.app, raise_server_exceptions=False)
    body = {"title": "Leak", "archetype": "data_exfiltration", "severity": "SEV2"}
    real = audit_service.record

    def failing(session: Any, **entry: Any) -> None:
        if entry["status_code"] == 201:
            raise RuntimeError("the audit log is unavailable")
        real(session, **entry)

    monkeypatch.setattr(audit_service, "record", failing)
    refused = client.post("/api/v1/incidents", json=body, headers=admin)
    assert refused.status_code == 500
    monkeypatch.setattr(audit_service, "record", real)
    listed = client.get("/api/v1/incidents", headers=admin).json()
    assert listed["items"] == []
    with clients.db.session(read_only=True) as session:
        entries = list(
            session.scalars(select(AuditEntry).where(AuditEntry.path == "/api/v1/incidents"))
        )
    # The failure is audited on its own; no record claims the change was made.
    assert [(e.method, e.status_code) for e in entries] == [("POST", 500)]

    made = client.post("/api/v1/incidents", json=body, headers=admin)
    assert made.status_code == 201
    with clients.db.session(read_only=True) as session:
        statuses = sorted(
            e.status_code
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.path == "/api/v1/incidents")
            )
        )
        stored = session.scalar(select(func.count(Incident.id)))
    assert statuses == [201, 500] and stored == 1
