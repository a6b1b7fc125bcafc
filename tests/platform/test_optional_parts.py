"""Blastwall without its optional parts: where one is needed, the command says which extra
to install (no traceback), and the rest works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BLOCKER = """
import sys
sys.modules.update(dict.fromkeys({absent!r}))  # None: an import fails as if not installed
sys.argv = ['blastwall', *{args!r}]
from blastwall.cli import main
main()
"""


def blastwall(
    tmp: Path, *args: str, absent: set[str], **env: str
) -> subprocess.CompletedProcess[str]:
    """`blastwall ARGS` in a process of its own, where the modules `absent` are not installed."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BLASTWALL_")}
    environment.update(BLASTWALL_DATA_DIR=str(tmp / "data"), COLUMNS="200", **env)
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "guard" / "src")])
    return subprocess.run(
        [sys.executable, "-c", BLOCKER.format(absent=absent, args=list(args))],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_postgresql_without_psycopg_names_the_extra(tmp_path: Path) -> None:
    done = blastwall(
        tmp_path,
        "init",
        absent={"psycopg"},
        BLASTWALL_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/none",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pip install 'blastwall[postgres]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_library_without_its_data_set_names_the_extra(tmp_path: Path) -> None:
    absent = {"genai_incidents", "psycopg"}  # SQLite needs neither
    assert blastwall(tmp_path, "init", absent=absent).returncode == 0
    done = blastwall(tmp_path, "library", "import", "--source", "genai-incidents", absent=absent)
    assert done.returncode == 1
    assert "pip install 'blastwall[library]'" in done.stderr
    assert "Traceback" not in done.stderr
    everything = blastwall(tmp_path, "library", "import", absent=absent)
    assert everything.returncode == 0, everything.stderr
    assert "genai-incidents skipped" in everything.stdout
    assert "pip install 'blastwall[library]'" in everything.stdout
    assert "atlas" in everything.stdout and "added" in everything.stdout
