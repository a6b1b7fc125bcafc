"""The evidence commands as a new user runs them: init makes the key, add, show, custody,
export, verify with the published key, a tampered bundle named, verify-ledger, hold."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from blastwall.cli import app
from blastwall.settings import get_settings


def _ok(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def test_add_export_verify_tamper(cli: CliRunner, tmp_path: Path) -> None:
    assert "evidence signing key made" in _ok(cli, "init")
    assert "evidence signing key kept" in _ok(cli, "init")
    assert oct(get_settings().signing_key_path.stat().st_mode & 0o777) == "0o600"
    _ok(
        cli,
        "incident",
        "open",
        "--title",
        "refund bot misled a customer",
        "--archetype",
        "misinformation_cascade",
        "--severity",
        "SEV3",
    )
    shot = tmp_path / "chat.txt"
    shot.write_text("customer ann@example.com was promised a refund\n")
    assert "evidence 1 added to incident 1" in _ok(
        cli, "evidence", "add", "1", str(shot), "--note", "from support"
    )
    assert "ann@example.com" in _ok(cli, "evidence", "show", "1", "--reason", "triage")
    custody = _ok(cli, "evidence", "custody", "1")
    assert "collected" in custody and "viewed" in custody and "triage" in custody
    bundle = tmp_path / "bundle.zip"
    assert "1 items" in _ok(cli, "evidence", "export", "1", "-o", str(bundle), "--reason", "review")
    key = tmp_path / "blastwall.pem"
    key.write_text(_ok(cli, "evidence", "pubkey"))
    assert "OK: incident 1, 1 items" in _ok(
        cli, "evidence", "verify", str(bundle), "--pubkey", str(key)
    )
    # Change one byte of the item inside the zip (its CRC too, so the zip itself is sound).
    with zipfile.ZipFile(bundle) as archive:
        members = [(i, archive.read(i)) for i in archive.infolist()]
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as out:
        for info, data in members:
            if info.filename.startswith("items/"):
                data = data.replace(b"refund", b"rEfund")
            out.writestr(info, data)
    failed = cli.invoke(app, ["evidence", "verify", str(tampered), "--pubkey", str(key)])
    assert failed.exit_code == 1
    assert "items/1-chat.txt (item 1, file): changed" in failed.output
    assert "OK: 3 records" in _ok(cli, "evidence", "verify-ledger")
    assert "1 items' bytes checked" in _ok(cli, "evidence", "verify-ledger", "--blobs")
    # A changed byte in the vault: the ledger alone cannot see it, --blobs does.
    (blob,) = [p for p in get_settings().vault_dir.rglob("*") if p.is_file()]
    blob.chmod(0o600)
    blob.write_bytes(blob.read_bytes().replace(b"refund", b"rEfund"))
    assert "OK: 3 records" in _ok(cli, "evidence", "verify-ledger")
    broken = cli.invoke(app, ["evidence", "verify-ledger", "--blobs"])
    assert broken.exit_code == 1 and "item 1: the vault's blob" in broken.output
    _ok(cli, "evidence", "hold", "1", "--reason", "complaint filed")
    refused = cli.invoke(app, ["evidence", "delete", "1", "--reason", "cleanup"])
    assert refused.exit_code == 1 and "legal hold" in str(refused.exception)
    audit = _ok(cli, "audit", "--json")
    assert "evidence export" in audit and "evidence hold" in audit


def test_verify_needs_no_database(cli: CliRunner, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-bundle.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    bogus.write_bytes(buffer.getvalue())
    result = cli.invoke(app, ["evidence", "verify", str(bogus)])  # no `blastwall init`
    assert result.exit_code == 1
    assert "manifest.json: missing from the bundle" in result.output
