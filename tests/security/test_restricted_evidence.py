"""An evidence item of a restricted incident is answered like one that does not exist, to
anyone who may not see the incident: the answer does not confirm the incident."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Clients
from tests.support.evidence import evidence_dir
from tests.support.restricted import restricted_incident

__all__ = ["evidence_dir"]  # a fixture


def test_a_hidden_item_and_a_missing_one_get_the_same_answer(
    clients: Clients, admin: dict[str, str], inventory: list[str], evidence_dir: Path
) -> None:
    client = clients.client
    incident = restricted_incident(clients, admin, "refund-agent")
    item = client.post(
        f"/api/v1/incidents/{incident}/evidence/files?name=note.txt",
        content=b"secret",
        headers={**admin, "content-type": "text/plain"},
    )
    assert item.status_code == 201, item.text
    item_id = item.json()["id"]
    outsider = clients.headers("responder", "outsider")
    for path in ("", "/custody"):
        hidden = client.get(f"/api/v1/evidence/{item_id}{path}", headers=outsider)
        missing = client.get(f"/api/v1/evidence/999999{path}", headers=outsider)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"].replace(str(item_id), "N") == missing.json()[
            "detail"
        ].replace("999999", "N")
        assert f"incident {incident}" not in hidden.text.lower()
    seen = client.get(f"/api/v1/evidence/{item_id}", headers=admin)
    assert seen.status_code == 200
