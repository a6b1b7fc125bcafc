"""The command line, end to end on an SQLite data dir."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blastwall.cli import app, main
from tests.conftest import EXAMPLES
from tests.support.cli import run


def test_commands_refuse_an_uninitialised_database(cli: CliRunner) -> None:
    result = cli.invoke(app, ["incident", "list"])
    assert result.exit_code != 0
    assert "blastwall init" in str(result.exception)


def test_init_is_idempotent_and_inventory_applies(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    run(cli, "init")
    assert "4 created" in run(cli, "inventory", "apply", str(EXAMPLES))
    assert "4 unchanged" in run(cli, "inventory", "apply", str(EXAMPLES))
    systems = json.loads(run(cli, "inventory", "list", "--json"))
    assert [s["id"] for s in systems] == [
        "code-assistant",
        "fraud-scoring",
        "refund-agent",
        "support-chatbot",
    ]
    shown = run(cli, "inventory", "show", "refund-agent")
    assert "issue-refund" in shown
    folder = tmp_path / "inv"
    shutil.copytree(EXAMPLES, folder)
    path = folder / "refund-agent.yaml"
    path.write_text(path.read_text().replace("max: 200", "max: 250"))
    dry = run(cli, "inventory", "apply", "--dry-run", str(folder))
    assert "refund-agent: 1 change(s)" in dry and "support-chatbot: unchanged" in dry
    run(cli, "inventory", "apply", str(folder))
    changes = json.loads(run(cli, "changes", "list", "--system", "refund-agent", "--json"))
    assert changes[0]["field"] == "components.tools[issue-refund].constraints.amount.max"
    assert (changes[0]["before"], changes[0]["after"]) == (200, 250)


def test_tokens(cli: CliRunner) -> None:
    run(cli, "init")
    out = run(cli, "token", "create", "--name", "ci", "--role", "responder")
    secret = out.strip().splitlines()[0]
    assert secret.startswith("bw_")
    listed = json.loads(run(cli, "token", "list", "--json"))
    assert listed[0]["name"] == "ci" and secret not in json.dumps(listed)
    run(cli, "token", "revoke", str(listed[0]["id"]))
    assert json.loads(run(cli, "token", "list", "--json")) == []
    bad = cli.invoke(app, ["token", "create", "--name", "x", "--role", "king"])
    assert bad.exit_code == 2


def test_incident_workflow(cli: CliRunner) -> None:
    run(cli, "init")
    run(cli, "inventory", "apply", str(EXAMPLES))
    opened = json.loads(
        run(
            cli,
            "incident",
            "open",
            "--title",
            "Refund agent over limit",
            "--archetype",
            "agentic_misalignment",
            "--severity",
            "SEV1",
            "--reason",
            "money moved",
            "--system",
            "refund-agent",
            "--json",
        )
    )
    number = str(opened["id"])
    run(cli, "token", "create", "--name", "erin", "--role", "commander")
    run(cli, "incident", "assign", number, "incident_commander", "erin")
    run(
        cli,
        "incident",
        "note",
        number,
        "The limit check is skipped on retries",
        "--kind",
        "hypothesis",
    )
    run(
        cli,
        "incident",
        "task",
        "add",
        number,
        "Revoke issue-refund",
        "--owner",
        "tom",
        "--due",
        "2026-12-01",
    )
    run(cli, "incident", "status", number, "investigating")
    refused = cli.invoke(app, ["incident", "status", number, "closed"])
    assert refused.exit_code == 1
    assert "Allowed next statuses" in str(refused.exception)
    shown = json.loads(run(cli, "incident", "show", number, "--json"))
    assert shown["incident"]["status"] == "investigating"
    assert shown["roles"] == [{"role": "incident_commander", "assignee": "erin"}]
    hypothesis = next(e for e in shown["timeline"] if e["kind"] == "hypothesis")
    assert hypothesis["hypothesis_state"] == "open"
    run(cli, "incident", "verdict", number, str(hypothesis["id"]), "refuted")
    shown = json.loads(run(cli, "incident", "show", number, "--json"))
    hypothesis = next(e for e in shown["timeline"] if e["kind"] == "hypothesis")
    assert hypothesis["hypothesis_state"] == "refuted"
    assert shown["tasks"][0]["owner"] == "tom"
    listed = json.loads(run(cli, "incident", "list", "--json"))
    assert [i["id"] for i in listed] == [opened["id"]]
    audit = json.loads(run(cli, "audit", "--json"))
    assert {"incident open", "incident status", "incident assign"} <= {a["route"] for a in audit}
    human = run(cli, "incident", "show", number)
    assert "Refund agent over limit" in human and "Timeline" in human


def test_cyclonedx_export_import(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    run(cli, "inventory", "apply", str(EXAMPLES))
    bom = tmp_path / "chatbot.cdx.json"
    run(cli, "inventory", "export", "support-chatbot", "-o", str(bom))
    assert json.loads(bom.read_text())["metadata"]["component"]["name"] == (
        "Customer support assistant"
    )
    assert "unchanged" in run(cli, "inventory", "import", str(bom))
    document = json.loads(bom.read_text())
    document["metadata"]["component"]["bom-ref"] = "system:support-chatbot-eu"
    bom.write_text(json.dumps(document))
    assert "support-chatbot-eu: created" in run(cli, "inventory", "import", str(bom))


def test_invalid_input_is_named_field_by_field(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["blastwall", "candidates", "decline", "1", "--reason", ""])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    printed = capsys.readouterr().err
    assert "invalid input" in printed
    assert "reason: String should have at least 1 character" in printed
    assert "errors.pydantic.dev" not in printed


def test_error_messages_keep_their_brackets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["blastwall", "taxonomy", "show", "[abc]x"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    assert "No taxonomy entry '[abc]x'" in capsys.readouterr().err  # not eaten as markup


HOSTILE = (
    "Model said [/bold] [link=https://x.example]here[/link] "
    "\x1b]52;c;cHduZWQ=\x07 \u202egnp.exe\rok"
)


def test_text_from_ai_systems_cannot_break_or_drive_the_terminal(cli: CliRunner) -> None:
    """Rich markup in a title is shown as written (an unmatched closing tag used to end the
    command with a MarkupError); escape sequences, carriage returns and bidirectional
    overrides are shown as escapes instead of acting on the terminal."""
    run(cli, "init")
    run(cli, "inventory", "apply", str(EXAMPLES))
    opened = run(
        cli,
        "incident",
        "open",
        "--title",
        HOSTILE,
        "--archetype",
        "prompt_injection",
        "--severity",
        "SEV3",
        "--reason",
        "test",
        "--system",
        "support-chatbot",
        "--json",
    )
    number = str(json.loads(opened)["id"])
    for args in (("incident", "show", number), ("incident", "list")):
        shown = run(cli, *args)
        assert "[/bold]" in shown and "[link=https://x.example]" in shown
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
        assert "\r" not in shown
        assert "\\x1b]52;c;cHduZWQ=\\x07" in shown and "\\u202egnp.exe\\x0dok" in shown
    # JSON keeps the text as it is (escaped by JSON itself)
    assert json.loads(run(cli, "incident", "show", number, "--json"))["incident"]["title"] == (
        HOSTILE
    )


def test_clean_keeps_newlines_and_tabs() -> None:
    from blastwall.console import clean

    assert clean("a\tb\nc") == "a\tb\nc"
    assert clean("plain [b]text[/b]") == "plain [b]text[/b]"
    assert clean("\x00\x08\x7f\x85\u200f\u2066") == "\\x00\\x08\\x7f\\x85\\u200f\\u2066"
