"""The taxonomy tables, the check of detectors' ids against them, the API and the CLI."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from blastwall.cli import app
from blastwall.detection.base import Detector, Finding, Item
from blastwall.detection.engine import DetectionEngine
from blastwall.incidents.schemas import Archetype
from blastwall.taxonomy import taxonomy
from blastwall.taxonomy.tables import load
from tests.conftest import ROOT, Clients

SRC = ROOT / "src" / "blastwall"
TAXONOMY_ID = re.compile(r"AML\.[A-Z]{1,2}\d{4}(?:\.\d{3})?|LLM\d{2}:20\d{2}")

FRAMEWORKS = """
frameworks:
  owasp-llm-2025: {name: OWASP LLM, url: u, entries: {"LLM01:2025": Prompt Injection}}
  owasp-agentic: {name: OWASP agentic, url: u, entries: {ASI01: Agent Goal Hijack}}
  nist-ai-600-1: {name: NIST, url: u, entries: {"NIST-AI-600-1:2.2": Confabulation}}
archetypes:
  prompt_injection: {name: Prompt injection, maps_to: ["LLM01:2025", AML.T0051]}
"""


def test_the_shipped_tables_hold_every_framework() -> None:
    tables = taxonomy()
    kinds: dict[tuple[str, str], int] = {}
    for entry in tables:
        kinds[entry.framework, entry.kind] = kinds.get((entry.framework, entry.kind), 0) + 1
    # as data/SOURCE.md counts them
    assert kinds["atlas", "tactic"] == 16
    assert kinds["atlas", "technique"] + kinds["atlas", "sub-technique"] == 170
    assert kinds["atlas", "sub-technique"] == 69
    assert kinds["atlas", "mitigation"] == 35
    assert kinds["atlas", "case-study"] == 57
    assert kinds["owasp-llm-2025", "risk"] == 10
    assert kinds["owasp-llm-2026", "risk"] == 10
    assert tables.get("LLM03:2025").name == "Supply Chain"
    assert tables.get("LLM03:2026").name == "Excessive Agency"
    assert kinds["owasp-agentic", "risk"] == 10
    assert kinds["nist-ai-600-1", "risk"] == 12
    assert {e.id for e in tables.of("archetype")} == {a.value for a in Archetype}
    assert tables.atlas_version == "5.6.0"
    injection = tables.get("AML.T0051.001")
    assert (injection.name, injection.parent, injection.kind) == (
        "Indirect",
        "AML.T0051",
        "sub-technique",
    )
    assert tables.get("AML.T0051").related == ("AML.TA0005",)  # Execution


def test_the_atlas_quirks_are_read() -> None:
    tables = taxonomy()
    # {id, use} objects inside ml-lifecycle name the techniques the mitigation applies to
    assert "AML.T0052.001" in tables.get("AML.M0018").related
    assert "AML.T0052.001" in tables.get("AML.M0034").related
    assert tables.get("AML.TA0002").attack == "TA0043"
    newer = """
matrices:
- tactics: [{id: AML.TA0001, name: Staging, attack-reference: {id: TA9999}}]
  techniques:
  - {id: AML.T0051, name: LLM Prompt Injection, tactics: [AML.TA0001]}
  mitigations:
  - {id: AML.M0001, name: Limit, ml-lifecycle: [Deployment, {id: AML.T0051, use: x}]}
"""
    built = load(newer, FRAMEWORKS)
    assert built.get("AML.TA0001").attack == "TA9999"
    assert built.get("AML.M0001").related == ("AML.T0051",)


def test_bad_tables_are_refused() -> None:
    atlas = "matrices: [{techniques: [{id: AML.T0051, name: x}, {id: AML.T0051, name: y}]}]"
    with pytest.raises(ValueError, match="defined twice"):
        load(atlas, FRAMEWORKS)
    with pytest.raises(ValueError, match="maps to unknown"):
        load("matrices: []", FRAMEWORKS)  # AML.T0051 is not there


def test_every_id_in_the_code_and_the_mapping_is_in_the_tables() -> None:
    tables = taxonomy()
    found = {
        match
        for path in SRC.rglob("*.py")
        for match in TAXONOMY_ID.findall(path.read_text("utf-8"))
    }
    assert found, "the detectors name taxonomy ids"
    assert tables.unknown(sorted(found)) == []
    for archetype in tables.of("archetype"):
        assert tables.unknown(archetype.related) == []


def test_agents_and_toxicity_map_to_atlas_techniques() -> None:
    tables = taxonomy()
    for archetype, wanted in (
        ("agentic_misalignment", {"AML.T0053", "AML.T0034.002", "AML.T0101"}),
        ("toxicity_abuse", {"AML.T0054", "AML.T0048.001", "AML.T0048.002", "AML.T0048.003"}),
    ):
        atlas = {i for i in tables.get(archetype).related if i.startswith("AML.")}
        assert atlas == wanted
        assert {tables.get(i).kind for i in atlas} <= {"technique", "sub-technique"}
    # what the tool-policy and runaway detectors answer leads back to the archetype
    for technique in ("AML.T0053", "AML.T0034.002"):
        assert "agentic_misalignment" in [a.id for a in tables.archetypes(technique)]
    assert tables.get("AML.T0048.002").name == "Societal Harm"


def test_an_id_is_explained_with_what_it_maps_to() -> None:
    tables = taxonomy()
    mapped = {e.id for e in tables.mapped("AML.T0051.001")}
    assert {"LLM01:2025", "ASI01"} <= mapped
    assert [a.id for a in tables.archetypes("LLM02:2025")] == ["data_exfiltration"]
    with pytest.raises(Exception, match="needs its edition"):
        tables.get("LLM01")
    with pytest.raises(Exception, match="No taxonomy entry"):
        tables.get("AML.T9999")
    assert tables.get("asi01").id == "ASI01"  # ids are read in any case


class WrongIds(Detector):
    id = "wrong_ids"
    version = "0.1"
    description = "Answers one real and one made-up id of each framework."

    def detect(self, item: Item) -> list[Finding]:
        return [
            Finding(
                kind="made_up",
                archetype=None,
                severity="info",
                confidence=0.5,
                summary="x",
                owasp=("LLM01:2025", "LLM99:2025"),
                atlas=("AML.T0051", "AML.T9999"),
            )
        ]


def test_the_engine_keeps_only_known_ids() -> None:
    engine = DetectionEngine([WrongIds])
    [detection] = engine.run([Item(inputs=["hello"])], lambda _: None)
    assert detection.finding.owasp == ("LLM01:2025",)
    assert detection.finding.atlas == ("AML.T0051",)
    assert engine.failures["wrong_ids"] == 1


def test_taxonomy_api(clients: Clients, app_client: TestClient) -> None:
    viewer = clients.headers("viewer")
    assert app_client.get("/api/v1/taxonomy/AML.T0051").status_code == 401
    entry = app_client.get("/api/v1/taxonomy/AML.T0051.001", headers=viewer).json()
    assert entry["parent"]["id"] == "AML.T0051"
    assert "LLM01:2025" in {m["id"] for m in entry["mapped"]}
    missing = app_client.get("/api/v1/taxonomy/LLM01", headers=viewer)
    assert missing.status_code == 404
    assert "LLM01:2025" in missing.json()["detail"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {
            "framework": "atlas",
            "limit": 50,
            **({"cursor": cursor} if cursor else {}),
        }
        page = app_client.get("/api/v1/taxonomy", params=params, headers=viewer).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 16 + 170 + 35 + 57
    bad = app_client.get("/api/v1/taxonomy", params={"cursor": "nope"}, headers=viewer)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.cursor"
    odd = app_client.get("/api/v1/taxonomy", params={"kind": "bogus"}, headers=viewer)
    assert odd.status_code == 422 and odd.json()["errors"][0]["field"] == "query.kind"


def test_taxonomy_commands() -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["taxonomy", "show", "AML.T0051"])
    assert shown.exit_code == 0, shown.output
    assert "LLM Prompt Injection" in shown.output
    assert "prompt_injection" in shown.output
    listed = runner.invoke(app, ["taxonomy", "list", "--framework", "nist-ai-600-1", "--json"])
    assert listed.exit_code == 0
    assert "Confabulation" in listed.output
    unknown = runner.invoke(app, ["taxonomy", "show", "LLM03"])
    assert unknown.exit_code != 0
    assert "LLM03:2026" in str(unknown.exception)  # `blastwall` prints it as the error
    bad = runner.invoke(app, ["taxonomy", "list", "--framework", "owasp"])
    assert bad.exit_code == 2
    odd = runner.invoke(app, ["taxonomy", "list", "--framework", "atlas", "--kind", "bogus"])
    assert odd.exit_code == 2 and "technique" in odd.output
