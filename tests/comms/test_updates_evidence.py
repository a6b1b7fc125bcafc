"""Published status updates travel in the evidence bundle (`updates.json`), covered by its
signature: the bundle still verifies offline."""

from __future__ import annotations

import json
from pathlib import Path

from blastwall.evidence.bundle import verify_bundle
from tests.conftest import Clients
from tests.support.bundles import read_members
from tests.support.evidence import evidence_dir
from tests.support.incidents import open_refund_incident

__all__ = ["evidence_dir"]  # a fixture

H = dict[str, str]


def test_published_updates_are_in_the_bundle(
    clients: Clients, admin: H, inventory: list[str], evidence_dir: Path, tmp_path: Path
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    api = f"/api/v1/incidents/{incident}"
    fact = {"kind": "fact", "text": "Refunds were issued without a request"}
    assert client.post(f"{api}/timeline", json=fact, headers=admin).status_code == 201
    draft = client.post(f"{api}/updates/drafts", json={"audience": "executives"}, headers=admin)
    update = draft.json()["id"]
    assert client.post(f"{api}/updates/{update}/publish", headers=admin).status_code == 200
    client.post(f"{api}/updates/drafts", json={"audience": "responders"}, headers=admin)
    answer = client.post(f"{api}/evidence/export", json={"reason": "audit"}, headers=admin)
    assert answer.status_code == 200, answer.text
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(answer.content)
    members = dict(read_members(bundle.read_bytes()))
    manifest = json.loads(members["manifest.json"])
    assert manifest["updates"] == {"file": "updates.json", "count": 1}
    [published] = json.loads(members["updates.json"])  # the draft is not in it
    assert (published["id"], published["audience"]) == (update, "executives")
    assert published["rendered"]["audience"]["sections"]["what_happened"] == (
        "- Refunds were issued without a request"
    )
    verdict = verify_bundle(bundle)
    assert verdict.ok, verdict.problems
