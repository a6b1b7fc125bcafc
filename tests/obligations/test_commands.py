"""`blastwall obligations` and the organisation profile applied beside the inventory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from blastwall.cli import app
from blastwall.errors import InvalidInput
from tests.support.cli import run

ROOT = Path(__file__).parents[2]


def test_the_command_line_from_profile_to_submission(cli: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "inventory"
    shutil.copytree(ROOT / "examples" / "inventory", folder)
    profile = folder / "organisation.yaml"
    profile.write_text("organisation: X\nentities:\n  - name: X\n    roles: [pirate]\n")
    run(cli, "init")
    refused = cli.invoke(app, ["inventory", "apply", str(folder)])
    assert isinstance(refused.exception, InvalidInput)
    problem = refused.exception.problems[0]
    assert problem.location.endswith("organisation.yaml: entities[0].roles[0]")
    assert problem.line == 4
    assert json.loads(run(cli, "inventory", "list", "--json")) == []
    shutil.copy(ROOT / "examples" / "obligations" / "organisation.yaml", profile)
    applied = run(cli, "inventory", "apply", str(folder))
    assert "4 created" in applied and "organisation.yaml: applied" in applied
    assert "organisation.yaml: unchanged" in run(cli, "inventory", "apply", str(folder))

    opened = json.loads(
        run(
            cli,
            "incident",
            "open",
            "--title",
            "Scores leak card holders' data",
            "--archetype",
            "data_exfiltration",
            "--severity",
            "SEV2",
            "--system",
            "fraud-scoring",
            "--json",
        )
    )
    number = str(opened["id"])
    assert "no obligation candidates" in run(cli, "obligations", number)
    run(cli, "obligations", "facts", number, "--fact", "personal_data_breach=true")
    rows = {r["rule_id"]: r for r in json.loads(run(cli, "obligations", number, "--json"))}
    assert {"gdpr-33", "contract-acme-24h"} <= set(rows)
    gdpr = str(rows["gdpr-33"]["id"])
    run(
        cli,
        "obligations",
        "anchor",
        number,
        "awareness",
        "2026-12-01T10:00:00+01:00",
        "--reason",
        "the DPO's e-mail",
    )
    rows = {r["rule_id"]: r for r in json.loads(run(cli, "obligations", number, "--json"))}
    assert rows["gdpr-33"]["clocks"][0]["due"]["at"] == "2026-12-04T09:00:00Z"
    run(cli, "obligations", "decide", number, gdpr, "confirmed", "--reason", "IBANs exposed")
    draft = run(cli, "obligations", "draft", number, gdpr)
    assert draft.startswith("# Draft: GDPR") and "not yet determined" in draft
    filed = tmp_path / "notification.pdf"
    filed.write_bytes(b"%PDF-1.4\n%%EOF\n")
    sent = run(
        cli,
        "obligations",
        "submit",
        number,
        gdpr,
        "--kind",
        "initial",
        "--at",
        "2026-12-02T12:00:00+01:00",
        "--reference",
        "R-1",
        "--file",
        str(filed),
    )
    assert "1 submission(s)" in sent
    assert "reminder(s) published" in run(cli, "obligations", "tick")
