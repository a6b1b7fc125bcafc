"""`blastwall update ...` on the command line: draft, edit (options and YAML), preview,
publish, approval, list, show, no-change, snooze and remind."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.support.cli import run


def test_an_update_from_draft_to_no_change(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    run(cli, "incident", "open", "--title", "Chatbot leaks order details",
        "--archetype", "data_exfiltration", "--severity", "SEV2")  # fmt: skip
    run(cli, "incident", "note", "1", "Order details reached other customers", "--kind", "fact")
    run(cli, "incident", "note", "1", "A cache key collides", "--kind", "hypothesis")
    drafted = json.loads(run(cli, "update", "draft", "1", "--audience", "responders", "--json"))
    assert drafted["what_happened"] == ["Order details reached other customers"]
    assert drafted["what_we_are_testing"] == ["A cache key collides"]
    edit = tmp_path / "edit.yaml"
    edit.write_text(
        "what_we_dont_know:\n  - How many customers saw another's order\nphase: identified\n",
        encoding="utf-8",
    )
    run(cli, "update", "edit", "1", "--file", str(edit))
    shown = run(cli, "update", "edit", "1", "--what-we-are-doing", "Cache disabled",
                "--what-we-are-doing", "Replaying the day's traffic")  # fmt: skip
    assert "- Cache disabled\n- Replaying the day's traffic" in shown
    preview = run(cli, "update", "preview", "1")
    assert "=== responders ===" in preview
    assert "How many customers saw another's order" in preview
    assert "Nothing blocks publishing." in preview
    published = json.loads(run(cli, "update", "publish", "1", "--json"))
    assert published["state"] == "published" and published["phase"] == "identified"
    run(cli, "update", "edit", "1", "--title", "late", code=1)
    repeated = json.loads(
        run(cli, "update", "no-change", "1", "--audience", "responders", "--json")
    )
    assert repeated["no_change_of"] == 1
    listed = run(cli, "update", "list", "1")
    assert "responders" in listed and "published" in listed
    assert "Cache disabled" in run(cli, "update", "show", "2")
    run(cli, "update", "snooze", "1", "--audience", "executives",
        "--until", "2099-01-01T00:00:00", "--reason", "board briefed in person")  # fmt: skip
    assert "reminder" in run(cli, "update", "remind")


def test_publishing_refuses_what_customers_may_not_see(cli: CliRunner) -> None:
    run(cli, "init")
    run(cli, "incident", "open", "--title", "Chatbot leaks order details",
        "--archetype", "data_exfiltration", "--severity", "SEV2")  # fmt: skip
    run(cli, "incident", "note", "1", "Mail went to jane@example.com", "--kind", "fact")
    run(cli, "update", "draft", "1", "--audience", "customers")
    preview = run(cli, "update", "preview", "1")
    assert "jane@example.com" not in preview.split("=== responders ===")[0]
    assert "what_happened[1]: holds what this audience may not see" in preview
    run(cli, "update", "publish", "1", code=1)
    run(cli, "update", "edit", "1", "--what-happened", "Some order details reached others")
    waiting = json.loads(run(cli, "update", "publish", "1", "--json"))
    assert waiting["state"] == "awaiting_approval"
    run(cli, "update", "approve", "1", code=1)  # the author cannot approve it
