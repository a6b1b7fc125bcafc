"""Every setting is documented in docs/settings.md."""

from __future__ import annotations

from pathlib import Path

from blastwall.settings import Settings
from tests.conftest import ROOT

DOC = ROOT / "docs" / "settings.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    for name in Settings.model_fields:
        assert f"`BLASTWALL_{name.upper()}`" in text, f"BLASTWALL_{name.upper()} is not in {DOC}"


def test_database_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'blastwall.db'}"
    pg = Settings(database_url="postgresql://u@h/db").resolved_database_url
    assert pg == "postgresql+psycopg://u@h/db"
