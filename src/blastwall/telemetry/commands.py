"""`blastwall telemetry ...`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Telemetry.", no_args_is_help=True)
