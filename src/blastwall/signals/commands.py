"""`blastwall signals ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Signals.", no_args_is_help=True)
