"""The known-incident library: import from the shipped sources, search, the API and the
command line, and its use in the triage pack."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from blastwall.auth.roles import Principal, Role
from blastwall.cli import app
from blastwall.db import Database
from blastwall.errors import InvalidInput, PermissionDenied
from blastwall.library import service
from blastwall.taxonomy import taxonomy
from tests.conftest import EXAMPLES, Clients

ADMIN = Principal(name="ada", role=Role.admin)
VIEWER = Principal(name="vic", role=Role.viewer)


@pytest.fixture
def imported(db: Database) -> Database:
    with db.transaction() as session:
        service.import_source(session, source="atlas", actor=ADMIN)
    return db


def test_atlas_case_studies_import_once_and_refresh(session: Session) -> None:
    done: list[int] = []
    first = service.import_source(session, source="atlas", actor=ADMIN, progress=done.append)
    assert (first.added, first.updated) == (57, 0)
    assert done[-1] == 57
    again = service.import_source(session, source="atlas", actor=ADMIN)
    assert (again.added, again.updated) == (0, 57)
    rows, _ = service.list_known(session, principal=VIEWER, source="atlas", limit=100)
    assert len(rows) == 57
    tables = taxonomy()
    assert all(i in tables for row in rows for i in row.atlas)
    assert all("MITRE" in row.attribution for row in rows)


def test_import_needs_the_admin_and_a_known_source(session: Session) -> None:
    with pytest.raises(PermissionDenied):
        service.import_source(session, source="atlas", actor=VIEWER)
    with pytest.raises(InvalidInput, match="genai-incidents"):
        service.import_source(session, source="aiid", actor=ADMIN)


def test_genai_incidents_import_keeps_the_codes_as_given(session: Session) -> None:
    result = service.import_source(session, source="genai-incidents", actor=ADMIN)
    assert result.added > 10_000
    rows, _ = service.list_known(session, principal=VIEWER, source="genai-incidents", limit=500)
    tables = taxonomy()
    assert all(i in tables for row in rows for i in [*row.atlas, *row.owasp])  # unknown dropped
    with_codes = next(r for r in rows if r.classifications["owasp_llm"])
    assert with_codes.owasp and all(":20" in c for c in with_codes.owasp if c.startswith("LLM"))
    assert with_codes.classifications["owasp_llm_edition"]
    assert "CC BY 4.0" in with_codes.attribution
    found = service.search(
        session, text="employees pasted source code into ChatGPT", principal=VIEWER, limit=5
    )
    assert found and found[0][1] >= found[-1][1]
    assert any("Samsung" in row.title for row, _ in found)


def test_library_api(clients: Clients, imported: Database) -> None:
    client: TestClient = clients.client
    viewer = clients.headers("viewer")
    assert client.get("/api/v1/library").status_code == 401
    page = client.get("/api/v1/library", params={"limit": 50}, headers=viewer).json()
    assert len(page["items"]) == 50 and page["next"]
    rest = client.get(
        "/api/v1/library", params={"limit": 50, "cursor": page["next"]}, headers=viewer
    ).json()
    assert len(rest["items"]) == 7 and rest["next"] is None
    hits = client.get(
        "/api/v1/library/search", params={"q": "chatbot prompt injection"}, headers=viewer
    ).json()
    assert hits and all(h["external"] for h in hits)
    one = client.get(f"/api/v1/library/{hits[0]['id']}", headers=viewer).json()
    assert one["source"] == "atlas"
    refused = client.post("/api/v1/library/import", json={"source": "atlas"}, headers=viewer)
    assert refused.status_code == 403
    admin = clients.headers("admin")
    again = client.post("/api/v1/library/import", json={"source": "atlas"}, headers=admin)
    assert again.status_code == 200 and again.json()["updated"] == 57


def test_triage_lists_external_incidents_apart(
    clients: Clients, imported: Database, inventory: list[str]
) -> None:
    client = clients.client
    admin = clients.headers("admin")
    incident = client.post(
        "/api/v1/incidents",
        json={
            "title": "Chatbot follows injected instructions from a retrieved web page",
            "archetype": "prompt_injection",
            "severity": "SEV3",
            "systems": ["support-chatbot"],
        },
        headers=admin,
    ).json()
    pack = client.get(f"/api/v1/incidents/{incident['id']}/triage", headers=admin).json()
    external = pack["similar_external"]
    assert external and all(e["external"] and "MITRE" in e["attribution"] for e in external)


def test_library_commands(cli: CliRunner) -> None:
    assert cli.invoke(app, ["init"]).exit_code == 0
    result = cli.invoke(app, ["library", "import", "--source", "atlas"])
    assert result.exit_code == 0, result.output
    assert "57 added" in result.output
    found = cli.invoke(app, ["library", "search", "model evasion malware", "--json"])
    assert found.exit_code == 0
    rows = json.loads(found.output)
    assert rows and rows[0]["source"] == "atlas"
    shown = cli.invoke(app, ["library", "show", str(rows[0]["id"])])
    assert shown.exit_code == 0 and "Apache-2.0" in shown.output
    assert cli.invoke(app, ["inventory", "apply", str(EXAMPLES)]).exit_code == 0
    opened = cli.invoke(
        app,
        [
            "incident",
            "open",
            "--title",
            "Chatbot follows injected instructions from a retrieved web page",
            "--archetype",
            "prompt_injection",
            "--severity",
            "SEV3",
            "--system",
            "support-chatbot",
        ],
    )
    assert opened.exit_code == 0, opened.output
    pack = cli.invoke(app, ["triage", "1"])
    assert pack.exit_code == 0, pack.output
    assert "Similar incidents elsewhere" in pack.output and "MITRE" in pack.output
