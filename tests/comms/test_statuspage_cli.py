"""`blastwall status`: components applied from the shipped example, a maintenance window,
and the page exported as static files that a plain file server serves."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from blastwall.cli import _apply_status_page, app
from blastwall.console import session_scope
from blastwall.settings import get_settings
from tests.support.cli import run
from tests.support.statuspage import EXAMPLE


def fails(cli: CliRunner, *args: str) -> str:
    """Run a command that must fail; its error."""
    result = cli.invoke(app, list(args))
    assert result.exit_code == 1, (args, result.output)
    return str(result.exception)


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain static file server (Python's) over an empty folder."""
    folder = tmp_path / "site"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_exported_page_is_served_by_a_static_file_server(
    cli: CliRunner, static_server: tuple[Path, str]
) -> None:
    folder, url = static_server
    run(cli, "init")
    assert "4 added, 0 changed, 0 removed" in run(cli, "status", "apply", str(EXAMPLE))
    added = run(
        cli,
        "status",
        "maintenance",
        "add",
        "--component",
        "refunds",
        "--start",
        "2000-01-01T00:00",
        "--end",
        "2999-01-01T00:00+01:00",
        "--title",
        "Refund agent model upgrade",
        "--json",
    )
    assert json.loads(added)["scheduled_until"] == "2998-12-31T23:00:00.000Z"
    assert "in_progress" in run(cli, "status", "maintenance", "list")
    assert "Service Under Maintenance" in run(cli, "status", "show")
    assert "wrote index.html and 8 JSON documents" in run(cli, "status", "export", str(folder))

    summary = httpx.get(f"{url}/api/v2/summary.json").json()
    assert summary["status"] == {
        "indicator": "maintenance",
        "description": "Service Under Maintenance",
    }
    refunds = next(c for c in summary["components"] if c["id"] == "refunds")
    assert refunds["status"] == "under_maintenance"
    [maintenance] = summary["scheduled_maintenances"]
    assert maintenance["name"] == "Refund agent model upgrade"
    index = httpx.get(f"{url}/")
    assert index.status_code == 200 and "Refund agent model upgrade" in index.text
    assert 'href="api/v2/summary.json"' in index.text
    for name in ("incidents.json", "incidents/unresolved.json", "scheduled-maintenances.json"):
        assert httpx.get(f"{url}/api/v2/{name}").status_code == 200
    audit = run(cli, "audit", "--json")
    assert {"status apply", "status maintenance add"} <= {e["route"] for e in json.loads(audit)}


def test_bad_input_is_refused_with_what_to_fix(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "init")
    run(cli, "status", "apply", str(EXAMPLE))
    bad = tmp_path / "page.yaml"
    bad.write_text("components:\n  - {id: x}\n")
    assert "components[0].name" in fails(cli, "status", "apply", str(bad))
    output = fails(
        cli,
        "status",
        "maintenance",
        "add",
        "-c",
        "refunds",
        "--start",
        "tomorrow",
        "--end",
        "2999-01-01",
        "--title",
        "x",
    )
    assert "--start" in output and "ISO 8601" in output
    assert "No subscribers" not in run(cli, "status", "subscribers")


def test_serve_applies_the_declared_page_when_it_starts(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(cli, "init")
    monkeypatch.setenv("BLASTWALL_STATUS_PAGE", str(EXAMPLE))
    get_settings.cache_clear()
    with session_scope() as session:
        _apply_status_page(session)
    shown = json.loads(run(cli, "status", "show", "--json"))
    assert [c["id"] for c in shown["components"]][:2] == ["support-assistant", "refunds"]
