"""The inventory: idempotent apply, the change log, whole-file refusal of bad input."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.errors import InvalidInput
from blastwall.inventory import service
from blastwall.inventory.loader import load_path
from blastwall.inventory.models import Change, System
from blastwall.inventory.schemas import ApplyResult
from tests.conftest import EXAMPLES, Clients


def _apply(session: Session, path: Path) -> ApplyResult:
    return service.apply_specs(
        session, specs=[i.spec for i in load_path(path)], actor="tester", source=str(path)
    )


def test_examples_cover_the_four_kinds_and_a_shared_vendor(session: Session) -> None:
    specs = {i.spec.id: i.spec for i in load_path(EXAMPLES)}
    assert {"support-chatbot", "refund-agent", "fraud-scoring", "code-assistant"} <= set(specs)
    assert {s.type.value for s in specs.values()} == {"generative", "agentic", "predictive"}
    assert any(d.kind == "retrieval" for d in specs["support-chatbot"].components.data_sources)
    assert specs["refund-agent"].components.tools
    _apply(session, EXAMPLES)
    sharing = service.systems_sharing(session, kind="vendor", key="openai")
    assert len(sharing) >= 2


def test_apply_is_idempotent(session: Session) -> None:
    first = _apply(session, EXAMPLES)
    assert len(first.created) == 4
    count = session.scalar(select(func.count()).select_from(Change))
    second = _apply(session, EXAMPLES)
    assert second.created == [] and second.updated == []
    assert len(second.unchanged) == 4
    assert session.scalar(select(func.count()).select_from(Change)) == count


def test_every_difference_is_logged(session: Session, tmp_path: Path) -> None:
    folder = tmp_path / "inv"
    shutil.copytree(EXAMPLES, folder)
    _apply(session, folder)
    path = folder / "refund-agent.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["components"]["tools"][0]["constraints"]["amount"]["max"] = 500
    doc["components"]["models"][0]["version"] = "2024-11-20"
    path.write_text(yaml.safe_dump(doc))
    result = _apply(session, folder)
    assert result.updated == ["refund-agent"]
    rows, _ = service.list_changes(session, limit=10, system_id="refund-agent", kind="inventory")
    fields = {r.field: (r.before, r.after, r.actor) for r in rows}
    assert fields["components.tools[issue-refund].constraints.amount.max"] == (200, 500, "tester")
    assert fields["components.models[gpt-4o].version"] == ("2024-08-06", "2024-11-20", "tester")


def test_malformed_file_is_refused_whole_with_file_line_field(
    session: Session, tmp_path: Path
) -> None:
    folder = tmp_path / "inv"
    shutil.copytree(EXAMPLES, folder)
    text = (folder / "fraud-scoring.yaml").read_text()
    text = text.replace("type: predictive", "type: clairvoyant")
    text = text.replace("    - id: fraud-gbm", "    - id: fraud-gbm\n      colour: blue")
    (folder / "fraud-scoring.yaml").write_text(text)
    with pytest.raises(InvalidInput) as caught:
        load_path(folder)
    problems = caught.value.problems
    assert len(problems) == 2
    by_field = {p.location.split(": ", 1)[1]: p for p in problems}
    assert str(folder / "fraud-scoring.yaml") in problems[0].location
    type_line = text.splitlines().index("type: clairvoyant") + 1
    assert by_field["type"].line == type_line
    colour_line = next(i for i, ln in enumerate(text.splitlines(), 1) if "colour" in ln)
    assert by_field["components.models[0].colour"].line == colour_line
    assert session.scalar(select(func.count()).select_from(System)) == 0


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nname: [unclosed\n")
    with pytest.raises(InvalidInput) as caught:
        load_path(bad)
    assert caught.value.problems[0].line is not None
    assert "not valid YAML" in caught.value.problems[0].message


def test_unknown_dependency_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "inv"
    folder.mkdir()
    shutil.copy(EXAMPLES / "refund-agent.yaml", folder)
    with pytest.raises(InvalidInput) as caught:
        load_path(folder)
    assert "support-chatbot" in str(caught.value)


def test_systems_api(clients: Clients, admin: dict[str, str], inventory: list[str]) -> None:
    client = clients.client
    page = client.get("/api/v1/systems?limit=3", headers=admin).json()
    assert len(page["items"]) == 3 and page["next"]
    rest = client.get(f"/api/v1/systems?cursor={page['next']}", headers=admin).json()
    ids = [s["id"] for s in page["items"] + rest["items"]]
    assert ids == inventory and rest["next"] is None
    one = client.get("/api/v1/systems/refund-agent", headers=admin).json()
    assert one["spec"]["components"]["tools"][0]["name"] == "issue-refund"
    assert client.get("/api/v1/systems/nope", headers=admin).status_code == 404


def test_apply_over_api_reports_fields(clients: Clients, admin: dict[str, str]) -> None:
    client = clients.client
    doc = yaml.safe_load((EXAMPLES / "code-assistant.yaml").read_text())
    assert client.post("/api/v1/systems", json=doc, headers=admin).json()["created"] == [
        "code-assistant"
    ]
    doc["risk"]["tier"] = "extreme"
    answer = client.post("/api/v1/systems", json=doc, headers=admin)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.risk.tier"


def test_changes_recorded_and_queried_by_system_and_time(
    clients: Clients, admin: dict[str, str], inventory: list[str]
) -> None:
    client = clients.client
    now = datetime.now(UTC)
    for hours, system in ((50, "support-chatbot"), (5, "support-chatbot"), (1, "refund-agent")):
        answer = client.post(
            "/api/v1/changes",
            json={
                "system_id": system,
                "kind": "prompt_change",
                "summary": f"{hours}h ago",
                "before": "13",
                "after": "14",
                "at": (now - timedelta(hours=hours)).isoformat(),
                "ref": "https://ci.example.com/run/1",
            },
            headers=admin,
        )
        assert answer.status_code == 201, answer.text
    since = (now - timedelta(hours=24)).isoformat()
    listed = client.get(
        "/api/v1/changes",
        params={"system": "support-chatbot", "since": since, "kind": "prompt_change"},
        headers=admin,
    ).json()
    assert [c["summary"] for c in listed["items"]] == ["5h ago"]
    everything = client.get(
        "/api/v1/changes", params={"kind": "prompt_change", "limit": 2}, headers=admin
    ).json()
    assert [c["summary"] for c in everything["items"]] == ["1h ago", "5h ago"]
    more = client.get(
        "/api/v1/changes",
        params={"kind": "prompt_change", "limit": 2, "cursor": everything["next"]},
        headers=admin,
    )
    assert [c["summary"] for c in more.json()["items"]] == ["50h ago"]
    unknown = client.post(
        "/api/v1/changes",
        json={"system_id": "ghost", "kind": "deploy", "summary": "x"},
        headers=admin,
    )
    assert unknown.status_code == 404
    bad_cursor = client.get("/api/v1/changes?cursor=garbage", headers=admin)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["field"] == "query.cursor"


def test_cyclonedx_over_api_round_trips(
    clients: Clients, admin: dict[str, str], inventory: list[str]
) -> None:
    client = clients.client
    exported = client.get("/api/v1/systems/refund-agent/cyclonedx", headers=admin)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/vnd.cyclonedx+json")
    bom = exported.json()
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    assert any(c["type"] == "machine-learning-model" for c in bom["components"])
    same = client.post(
        "/api/v1/systems/cyclonedx",
        content=exported.content,
        headers={**admin, "content-type": "application/vnd.cyclonedx+json"},
    )
    assert same.json()["unchanged"] == ["refund-agent"], same.text
    bom["metadata"]["component"]["version"] = "x"
    bom["metadata"]["component"]["name"] = "Refund agent v2"
    renamed = client.post("/api/v1/systems/cyclonedx", json=bom, headers=admin).json()
    assert renamed["updated"] == ["refund-agent"]
    broken = client.post("/api/v1/systems/cyclonedx", content=b"{not json", headers=admin)
    assert broken.status_code == 422 and broken.json()["errors"]
