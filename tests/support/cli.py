"""The command line as a test runs it: a command that must end with a given exit code."""

from __future__ import annotations

from typer.testing import CliRunner

from blastwall.cli import app


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    """Run `blastwall ARGS`; its output, once its exit code is `code`."""
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.output
