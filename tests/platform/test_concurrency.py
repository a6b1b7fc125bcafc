"""Many clients writing at once over real HTTP, on a real SQLite file with its own
connections (not the rolled-back test transaction): every write answers 2xx, is stored
once, and is audited once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, select

from blastwall.api import create_app
from blastwall.audit.models import AuditEntry
from blastwall.auth import service as auth_service
from blastwall.auth.roles import Role
from blastwall.db import Database, make_engine
from blastwall.incidents.models import Incident, TimelineEntry
from blastwall.inventory import service as inventory_service
from blastwall.inventory.loader import load_path
from blastwall.migrate import upgrade
from blastwall.settings import Settings
from tests.conftest import EXAMPLES
from tests.support.live import serve

WRITERS = 48
PER_WRITER = 3


def test_concurrent_writes_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'concurrent.db'}")
    upgrade(engine)
    db = Database(engine)
    with db.transaction() as session:
        inventory_service.apply_specs(
            session, specs=[i.spec for i in load_path(EXAMPLES)], actor="test"
        )
        _, token = auth_service.create_token(
            session, name="writer", role=Role.responder, created_by="test"
        )
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "title": "t",
        "archetype": "prompt_injection",
        "severity": "SEV3",
        "systems": ["support-chatbot"],
    }
    with serve(create_app(db, Settings())) as url:

        def write(n: int) -> list[int]:
            codes = []
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                for _ in range(PER_WRITER):
                    made = client.post("/api/v1/incidents", json=body)
                    codes.append(made.status_code)
                    if made.status_code == 201:
                        note = {"kind": "note", "text": f"writer {n}"}
                        codes.append(
                            client.post(
                                f"/api/v1/incidents/{made.json()['id']}/timeline", json=note
                            ).status_code
                        )
                    codes.append(client.get("/api/v1/incidents?limit=5").status_code)
            return codes

        with ThreadPoolExecutor(WRITERS) as pool:
            codes = [c for result in pool.map(write, range(WRITERS)) for c in result]
    assert set(codes) <= {200, 201}, sorted(set(codes))
    expected = WRITERS * PER_WRITER
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == expected
        notes = select(func.count()).select_from(TimelineEntry).where(TimelineEntry.kind == "note")
        assert session.scalar(notes) == expected
        audited = select(func.count()).select_from(AuditEntry).where(AuditEntry.actor == "writer")
        assert session.scalar(audited) == 2 * expected
    engine.dispose()
