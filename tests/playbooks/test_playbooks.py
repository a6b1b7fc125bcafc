"""Playbooks: the shipped library, an organisation's folder, step selection, CACAO export,
and checklists on incidents through the API and the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from blastwall.cli import app
from blastwall.errors import InvalidInput, PlaybookError
from blastwall.incidents.schemas import Archetype
from blastwall.playbooks.cacao import to_cacao
from blastwall.playbooks.library import library, load_folder, select_steps
from tests.conftest import EXAMPLES, ROOT, Clients
from tests.support.incidents import open_refund_incident

H = dict[str, str]
SHIPPED = library()


def test_the_shipped_playbooks_cover_the_archetypes() -> None:
    covered = {a.value for p in SHIPPED.playbooks.values() for a in p.archetypes}
    assert covered >= {
        "prompt_injection",
        "data_exfiltration",
        "model_manipulation",
        "misinformation_cascade",
        "toxicity_abuse",
        "agentic_misalignment",
        "vendor_failure",
        "performance_degradation",
    }
    assert covered <= {a.value for a in Archetype}
    for playbook in SHIPPED.playbooks.values():
        kinds = {s.kind.value for s in playbook.steps}
        assert {"check", "containment", "evidence", "communication", "decision"} <= kinds, (
            playbook.id
        )


def test_steps_are_selected_by_severity_and_system_type() -> None:
    playbook = SHIPPED.get("agentic_misalignment")
    sev1 = [s.id for s in select_steps(playbook, severity="SEV1", system_types=["agentic"])]
    sev3 = [s.id for s in select_steps(playbook, severity="SEV3", system_types=["agentic"])]
    assert sev1[:3] == ["revoke-permissions", "suspend-agent", "require-approval"]
    assert "suspend-agent" not in sev3 and "require-approval" not in sev3
    injection = SHIPPED.get("prompt_injection")
    chatbot = [s.id for s in select_steps(injection, severity="SEV2", system_types=["generative"])]
    agent = [s.id for s in select_steps(injection, severity="SEV2", system_types=["agentic"])]
    unknown = [s.id for s in select_steps(injection, severity="SEV2", system_types=[])]
    assert "require-approval" not in chatbot
    assert "require-approval" in agent and "require-approval" in unknown


def test_an_organisation_folder_replaces_and_adds(tmp_path: Path) -> None:
    own = yaml.safe_load((ROOT / "src/blastwall/playbooks/data/drift.yaml").read_text())
    own["name"] = "Our drift runbook"
    own["version"] = 2
    (tmp_path / "drift.yaml").write_text(yaml.safe_dump(own))
    extra = {
        "id": "shadow-ai",
        "name": "Shadow AI",
        "archetypes": ["unauthorised_use"],
        "steps": [{"id": "find-owner", "kind": "check", "title": "Find who runs it"}],
    }
    (tmp_path / "shadow.yaml").write_text(yaml.safe_dump(extra))
    found = library(tmp_path)
    assert found.get("drift").name == "Our drift runbook"
    assert found.for_archetype("unauthorised_use").id == "shadow-ai"
    assert found.custom == {"drift", "shadow-ai"}
    assert len(found.playbooks) == len(SHIPPED.playbooks) + 1


def test_a_bad_playbook_file_is_refused_with_its_path_and_field(tmp_path: Path) -> None:
    bad = {
        "id": "broken",
        "name": "Broken",
        "archetypes": ["prompt_injection"],
        "steps": [
            {"id": "a", "kind": "containment", "title": "Contain"},  # no control
            {"id": "b", "kind": "decision", "title": "Decide", "options": ["x"]},
            {"id": "c", "kind": "check", "title": "Check", "control": "suspend"},
        ],
    }
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(bad))
    (tmp_path / "notyaml.yaml").write_text("id: [unclosed\n")
    with pytest.raises(InvalidInput) as caught:
        load_folder(tmp_path)
    where = [p.location for p in caught.value.problems]
    assert any("broken.yaml: steps[0]" in w for w in where)
    assert any("broken.yaml: steps[1]" in w for w in where)
    assert any("broken.yaml: steps[2]" in w for w in where)
    assert any("notyaml.yaml" in w for w in where)
    with pytest.raises(PlaybookError, match="BLASTWALL_PLAYBOOK_DIR"):
        library(tmp_path)  # never good: refused (the server does not start)


def test_a_folder_that_turns_bad_keeps_the_last_good_playbooks(tmp_path: Path) -> None:
    good = {
        "id": "ours",
        "name": "Ours",
        "archetypes": ["prompt_injection"],
        "steps": [{"id": "look", "kind": "check", "title": "Look"}],
    }
    path = tmp_path / "ours.yaml"
    path.write_text(yaml.safe_dump(good))
    assert "ours" in library(tmp_path).custom
    path.write_text("id: [unclosed\n")
    os.utime(path, ns=(1, 1))  # a new stamp, whatever the clock's resolution
    kept = library(tmp_path)
    assert kept.get("ours").name == "Ours"


def test_cacao_export_is_a_connected_workflow() -> None:
    for playbook in SHIPPED.playbooks.values():
        document = to_cacao(playbook)
        assert document == to_cacao(playbook)  # the same playbook, the same document
        assert document["type"] == "playbook" and document["spec_version"] == "cacao-2.0"
        assert document["id"].startswith("playbook--")
        workflow = document["workflow"]
        for step_id, step in workflow.items():
            assert step_id.startswith(step["type"] + "--")
        reached, current = [], document["workflow_start"]
        while workflow[current]["type"] != "end":
            reached.append(current)
            step = workflow[current]
            assert step["on_completion"] in workflow
            current = step["on_completion"]
        assert len(reached) == len(playbook.steps) + 1  # start and every step, in order
        agents = document["agent_definitions"]
        for step in workflow.values():
            if step["type"] == "action":  # CACAO 2.0: an action names its agent
                assert agents[step["agent"]]["type"] == "group" and step["commands"]
        decisions = [s for s in playbook.steps if s.kind.value == "decision"]
        switches = [s for s in workflow.values() if s["type"] == "switch-condition"]
        assert len(switches) == len(decisions)
        ends: list[str] = []
        for switch, decision in zip(switches, decisions, strict=True):
            assert set(switch["cases"]) == set(decision.options)
            assert switch["switch"] in document["playbook_variables"]
            for branch in switch["cases"].values():  # one step id per case, its own end
                assert isinstance(branch, str) and workflow[branch]["type"] == "action"
                ends.append(workflow[branch]["on_completion"])
                assert workflow[ends[-1]]["type"] == "end"
        assert len(set(ends)) == len(ends)


def test_checklist_through_the_api(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)
    url = f"/api/v1/incidents/{incident['id']}"
    viewer, responder = clients.headers("viewer"), clients.headers("responder", "rita")
    assert client.post(f"{url}/playbooks", json={}, headers=viewer).status_code == 403
    attached = client.post(f"{url}/playbooks", json={}, headers=responder)
    assert attached.status_code == 201, attached.text
    steps = attached.json()
    assert {s["playbook_id"] for s in steps} == {"agentic_misalignment"}
    ids = [s["step_id"] for s in steps]
    assert "require-approval" in ids and "suspend-agent" not in ids  # SEV2 on an agent
    again = client.post(f"{url}/playbooks", json={}, headers=responder)
    assert again.status_code == 409
    checklist = client.get(f"{url}/checklist", headers=viewer).json()["items"]
    assert [s["id"] for s in checklist] == [s["id"] for s in steps]

    revoke = next(s for s in steps if s["step_id"] == "revoke-permissions")
    assert revoke["control"] == "revoke_tool"
    done = client.post(
        f"{url}/checklist/{revoke['id']}/complete",
        json={"note": "issue_refund revoked"},
        headers=responder,
    )
    assert done.status_code == 200 and done.json()["state"] == "done"
    twice = client.post(f"{url}/checklist/{revoke['id']}/complete", json={}, headers=responder)
    assert twice.status_code == 409

    decision = next(s for s in steps if s["kind"] == "decision")
    path = f"{url}/checklist/{decision['id']}/complete"
    wrong = client.post(path, json={"outcome": "maybe"}, headers=responder)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "outcome"
    not_theirs = client.post(path, json={"outcome": "resume"}, headers=responder)
    assert not_theirs.status_code == 403
    assert "incident_commander" in not_theirs.json()["detail"]
    commander = clients.headers("commander", "carol")
    role = {"role": "incident_commander", "assignee": "rita"}
    assert client.post(f"{url}/roles", json=role, headers=commander).status_code in (200, 201)
    decided = client.post(path, json={"outcome": "resume-with-approval"}, headers=responder)
    assert decided.status_code == 200, decided.text
    assert decided.json()["outcome"] == "resume-with-approval"

    timeline = client.get(f"{url}/timeline", headers=viewer).json()["items"]
    kinds = [e["kind"] for e in timeline]
    assert "playbook_attached" in kinds and "playbook_step" in kinds and "decision" in kinds
    assert any("resume-with-approval" in e["text"] for e in timeline)
    missing = client.post(f"{url}/checklist/999999/complete", json={}, headers=responder)
    assert missing.status_code == 404


def test_restricted_incidents_keep_their_checklist_hidden(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin, visibility="restricted")
    url = f"/api/v1/incidents/{incident['id']}"
    assert client.post(f"{url}/playbooks", json={}, headers=admin).status_code == 201
    outsider = clients.headers("responder", "otto")
    assert client.get(f"{url}/checklist", headers=outsider).status_code == 404


def test_playbook_api_and_cacao(clients: Clients) -> None:
    client = clients.client
    viewer = clients.headers("viewer")
    assert client.get("/api/v1/playbooks").status_code == 401
    listed = client.get("/api/v1/playbooks", headers=viewer).json()["items"]
    assert {p["id"] for p in listed} == set(SHIPPED.playbooks)
    shown = client.get("/api/v1/playbooks/prompt_injection", headers=viewer).json()
    assert shown["steps"][0]["id"] == "confirm-signals"
    cacao = client.get("/api/v1/playbooks/prompt_injection/cacao", headers=viewer).json()
    assert cacao["spec_version"] == "cacao-2.0"
    assert client.get("/api/v1/playbooks/nope", headers=viewer).status_code == 404


def test_playbook_commands(cli: CliRunner, tmp_path: Path) -> None:
    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(app, list(args))
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output

    run("init")
    run("inventory", "apply", str(EXAMPLES))
    opened = run(
        "incident",
        "open",
        "--title",
        "Chatbot leaks",
        "--archetype",
        "data_exfiltration",
        "--severity",
        "SEV1",
        "--system",
        "support-chatbot",
        "--json",
    )
    number = json.loads(opened)["id"]
    assert "data_exfiltration" in run("playbook", "attach", str(number))
    items = json.loads(run("playbook", "checklist", str(number), "--json"))
    assert items[0]["step_id"] == "confirm-leak"
    assert "revoke-connector" not in [i["step_id"] for i in items]  # a generative system
    assert "done" in run(
        "playbook", "done", str(number), str(items[0]["position"]), "--note", "seen"
    )
    decision = next(i for i in items if i["kind"] == "decision")
    assert "notify" in run(
        "playbook", "done", str(number), decision["step_id"], "--outcome", "notify"
    )
    quarantine = next(i for i in items if i["control"] == "quarantine_output")
    ran = run(
        "playbook", "run", str(number), str(quarantine["position"]), "--reason", "hold the answers"
    )
    assert "containment action" in ran
    assert "quarantine_output" in run("containment", "list", str(number))
    target = tmp_path / "pb.json"
    run("playbook", "export", "vendor_failure", "-o", str(target))
    assert json.loads(target.read_text())["spec_version"] == "cacao-2.0"
    assert "Agentic misalignment" in run("playbook", "list")


def test_a_containment_step_runs_its_action(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)  # SEV2 on the refund agent
    url = f"/api/v1/incidents/{incident['id']}"
    steps = client.post(f"{url}/playbooks", json={}, headers=admin).json()
    revoke = next(s for s in steps if s["control"] == "revoke_tool")
    check = next(s for s in steps if s["kind"] == "check")
    wrong = client.post(f"{url}/checklist/{check['id']}/run", json={"reason": "x"}, headers=admin)
    assert wrong.status_code == 422
    ran = client.post(
        f"{url}/checklist/{revoke['id']}/run",
        json={"reason": "refunds above the limit", "params": {"tool": "issue-refund"}},
        headers=admin,
    )
    assert ran.status_code in (201, 202), ran.text
    body = ran.json()
    assert body["action"]["control"] == "revoke_tool"
    assert body["step"]["state"] == "done"
    assert f"action {body['action']['id']}" in body["step"]["note"]
    actions = client.get(f"{url}/actions", headers=admin).json()["items"]
    assert [a["id"] for a in actions] == [body["action"]["id"]]
    again = client.post(
        f"{url}/checklist/{revoke['id']}/run", json={"reason": "again"}, headers=admin
    )
    assert again.status_code == 409
