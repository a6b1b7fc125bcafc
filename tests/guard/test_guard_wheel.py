"""The guard as its users install it: the blastwall-guard wheel built from guard/ holds the
guard alone and requires httpx and httpx-sse alone; installed into an empty virtual
environment it brings nothing of the server, and the refund example runs on it against a
Blastwall server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import HeaderParser
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT
from tests.support.containment_live import WAIT, Installation, wait_for
from tests.support.refund_agent import EXAMPLE, Agent

GUARD = ROOT / "guard"
SERVER_PARTS = {"blastwall", "fastapi", "sqlalchemy", "numpy", "scipy", "psycopg", "hyperscan"}


def _pip(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The blastwall-guard wheel, built from a copy of guard/ (so that no build output lands
    in the working tree)."""
    where = tmp_path_factory.mktemp("guard-wheel")
    source = where / "guard"
    shutil.copytree(
        GUARD, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    built = _pip("wheel", "--no-deps", "--wheel-dir", str(where / "dist"), str(source))
    if built.returncode != 0 and "from versions: none" in built.stderr:
        pytest.skip(f"no package index to take the build's setuptools from: {built.stderr[-500:]}")
    assert built.returncode == 0, built.stderr
    [found] = (where / "dist").glob("blastwall_guard-*.whl")
    return found


def test_the_wheel_holds_the_guard_and_requires_httpx_alone(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode())
    assert {name.split("/")[0] for name in names} == {
        "blastwall_guard",
        metadata_name.split("/")[0],
    }
    assert "blastwall_guard/py.typed" in names
    assert (metadata["Name"], metadata["License-Expression"]) == ("blastwall-guard", "Apache-2.0")
    requirements = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
    always = {r.name for r in requirements if r.marker is None}
    assert always == {"httpx", "httpx-sse"}
    for requirement in requirements:
        if requirement.marker is not None:
            assert "extra ==" in str(requirement.marker), requirement
    assert "openfeature" in (metadata.get_all("Provides-Extra") or [])


@pytest.fixture
def guard_only(wheel: Path, tmp_path: Path) -> Iterator[Path]:
    """The Python of a new virtual environment with the wheel installed and nothing else."""
    venv = tmp_path / "app-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    installed = _pip("install", str(wheel), python=str(python))
    if installed.returncode != 0 and "from versions: none" in installed.stderr:
        pytest.skip(f"no package index to install httpx from: {installed.stderr[-500:]}")
    assert installed.returncode == 0, installed.stderr
    yield python


@pytest.mark.slow
def test_the_installed_guard_alone_runs_the_refund_example(
    guard_only: Path, tmp_path: Path
) -> None:
    listed = _pip("list", "--format=json", python=str(guard_only))
    assert listed.returncode == 0, listed.stderr
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert {"blastwall-guard", "httpx", "httpx-sse"} <= names
    assert not names & SERVER_PARTS, names & SERVER_PARTS

    with Installation(tmp_path) as site:
        site.cli("inventory", "apply", str(EXAMPLE / "inventory.yaml"))
        admin = {"Authorization": f"Bearer {site.token('alice', 'admin')}"}
        site.start()
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("BLASTWALL_", "PYTHON"))
        }
        agent = Agent(
            site.url, site.token("refund-bot", "viewer"), environment, python=str(guard_only)
        )
        api = httpx.Client(base_url=site.url, headers=admin, timeout=WAIT)
        try:
            wait_for("the agent's guard", lambda: agent.ask("revision")["revision"] == 0)
            first = agent.ask("refund A-100 20")
            assert first["ok"], first
            incident = api.post(
                "/api/v1/incidents",
                json={
                    "title": "Refunds outside policy",
                    "archetype": "agentic_misalignment",
                    "severity": "SEV2",
                    "systems": ["refund-bot"],
                },
            ).json()["id"]
            api.post(
                f"/api/v1/incidents/{incident}/actions",
                json={
                    "control": "revoke_tool",
                    "params": {"tool": "issue_refund"},
                    "reason": "refunds outside policy",
                },
            ).raise_for_status()
            wait_for("the revocation", lambda: agent.ask("revision")["revision"] >= 1)
            blocked = agent.ask("refund A-101 10")
            assert not blocked["ok"]
            assert blocked["blocked"] == "ToolDenied"
            assert "refunds outside policy" in blocked["reason"]
            assert agent.ask("status A-101")["ok"]
        finally:
            agent.close()
            api.close()
