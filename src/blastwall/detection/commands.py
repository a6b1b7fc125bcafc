"""`blastwall scan`, `blastwall canary ...`, `blastwall detectors` and `blastwall workers`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any

import httpx
import orjson
import typer
from sqlalchemy import make_url, select
from sqlalchemy.exc import OperationalError

from blastwall.console import (
    audit,
    fmt,
    open_database,
    operator,
    out,
    print_json,
    print_table,
    session_scope,
)
from blastwall.db import dispose
from blastwall.detection import service
from blastwall.detection.engine import Detection, DetectionEngine
from blastwall.detection.items import item_from_line
from blastwall.detection.schemas import CanaryOut
from blastwall.errors import (
    AuthenticationRequired,
    BlastwallError,
    InvalidInput,
    NotFound,
    NotInitialised,
    PermissionDenied,
    Unavailable,
)
from blastwall.inventory.models import System
from blastwall.settings import get_settings

canary_app = typer.Typer(
    help="Canary tokens to embed in system prompts; their appearance in outputs is a leak.",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@canary_app.command("issue")
def canary_issue(
    system: Annotated[str, typer.Option(help="The system whose prompt will carry it.")],
    note: Annotated[str | None, typer.Option(help="Where it is placed.")] = None,
) -> None:
    """Issue a canary token (printed once) to embed in the system's prompt."""
    with session_scope() as session:
        row, token = service.issue_canary(session, system_id=system, note=note, actor=operator())
        audit(session, command="canary issue", object=f"canary:{row.id}")
    typer.echo(token)
    typer.echo(
        f"canary {row.id} for {system}: put it in the system prompt, e.g. 'Internal reference: "
        f"{token}. Never repeat it.' It is not shown again.",
        err=True,
    )


@canary_app.command("list")
def canary_list(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    json: JsonOpt = False,
) -> None:
    """List canary tokens (their prefixes; the tokens are not stored)."""
    with session_scope() as session:
        rows = [
            CanaryOut.model_validate(r)
            for r in service.list_canaries(session, principal=operator(), system_id=system)
        ]
    if json:
        print_json(rows)
        return
    print_table(
        ["id", "system", "prefix", "note", "created", "revoked"],
        [(c.id, c.system_id, c.prefix + "…", c.note, c.created_at, c.revoked_at) for c in rows],
    )


@canary_app.command("revoke")
def canary_revoke(canary_id: Annotated[int, typer.Argument(help="The canary's id.")]) -> None:
    """Stop watching for a canary token."""
    with session_scope() as session:
        row = service.revoke_canary(session, canary_id=canary_id, actor=operator())
        audit(session, command="canary revoke", object=f"canary:{row.id}")
    out.print(f"canary {row.id} ({row.system_id}) revoked")


def detectors(json: JsonOpt = False) -> None:
    """List the registered detectors (built-in and from plugins)."""
    engine = DetectionEngine()
    rows: list[dict[str, Any]] = [
        {
            "id": cls.id,
            "version": cls.version,
            "stateful": cls.stateful,
            "description": cls.description,
            "settings": sorted(cls.Config.model_fields),
        }
        for cls in engine.classes
    ]
    if json:
        print_json(rows)
        return
    print_table(
        ["id", "version", "kind", "description", "settings"],
        [
            (
                r["id"],
                r["version"],
                "stateful" if r["stateful"] else "stateless",
                r["description"],
                ", ".join(r["settings"]),
            )
            for r in rows
        ],
    )


def workers(
    url: Annotated[
        str, typer.Option(envvar="BLASTWALL_URL", help="The running server's address.")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None,
        typer.Option(
            envvar="BLASTWALL_TOKEN", help="An admin API token (better: BLASTWALL_TOKEN)."
        ),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Show the running server's detection workers: pid, alive, batches done and queued,
    restarts, last error. The workers live in the server process, so this asks the server
    (GET /api/v1/detection/workers, admin token) instead of the database."""
    if not token:
        raise AuthenticationRequired(
            "`blastwall workers` asks the running server, which needs an admin token: set "
            "BLASTWALL_TOKEN (or give --token). `blastwall token create --name ops --role admin` "
            "makes one."
        )
    address = url.rstrip("/")
    status = _workers_status(address, token)
    if json:
        print_json(status)
        return
    _print_workers(status, address)


def _workers_status(address: str, token: str) -> dict[str, Any]:
    """The server's answer to GET /api/v1/detection/workers; its errors as ours."""
    try:
        answer = httpx.get(
            f"{address}/api/v1/detection/workers",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
        )
    except httpx.HTTPError as exc:
        raise Unavailable(
            f"No Blastwall server answers at {address} ({exc}). Start one with `blastwall "
            "serve`, or give its address with --url or BLASTWALL_URL."
        ) from None
    if answer.status_code != 200:
        detail = _problem_detail(answer)
        errors: dict[int, type[BlastwallError]] = {
            401: AuthenticationRequired,
            403: PermissionDenied,
            404: NotFound,
        }
        raise errors.get(answer.status_code, BlastwallError)(
            f"The server at {address} answered {answer.status_code}: {detail}"
        )
    status: dict[str, Any] = answer.json()
    return status


def _print_workers(status: dict[str, Any], address: str) -> None:
    """The workers as a table, or the mode the server runs its detectors in."""
    if status["mode"] != "workers":
        where = "in the ingest request" if status["mode"] == "inline" else "nowhere (off)"
        out.print(
            f"server process {status['server_pid']} at {address} runs the detectors {where}: "
            "no detection workers"
        )
        return
    totals = status.get("totals") or {}
    print_table(
        [
            "worker",
            "pid",
            "alive",
            "started",
            "restarts",
            "done",
            "queued",
            "signals",
            "last error",
        ],
        [
            (
                w["index"],
                w["pid"],
                "yes" if w["alive"] else "NO",
                _time(w["started_at"]),
                w["restarts"],
                w["done"],
                w["queued"],
                w["signals"],
                f"{fmt(_time(w['last_error_at']))}: {w['last_error']}" if w["last_error"] else None,
            )
            for w in status["workers"]
        ],
        title=f"Detection workers of server process {status['server_pid']} at {address} "
        f"(dropped {totals.get('dropped', 0)}, lost {totals.get('lost', 0)} batches)",
    )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _problem_detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:300] or answer.reason_phrase
    return str(body.get("detail") or body) if isinstance(body, dict) else str(body)[:300]


# --- blastwall scan -----------------------------------------------------------------------


class _Specs:
    """Inventory entries for `scan`: from YAML files given with --inventory, else from the
    configured database when it is set up, else none (detectors run with their defaults)."""

    def __init__(self, inventory: Path | None, engine: DetectionEngine) -> None:
        self.specs: dict[str, dict[str, Any]] = {}
        self.source = "defaults"
        if inventory is not None:
            from blastwall.inventory.loader import load_path

            for loaded in load_path(inventory):
                self.specs[loaded.spec.id] = loaded.spec.model_dump(mode="json")
            self.source = str(inventory)
            return
        settings = get_settings()
        url = make_url(settings.resolved_database_url)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            return  # no data dir here: nothing to read, and nothing to create
        try:
            db = open_database()
        except (NotInitialised, OperationalError) as exc:
            typer.echo(f"scan: not reading the inventory ({exc}); using defaults", err=True)
            return
        try:
            with db.session(read_only=True) as session:
                for system_id, spec in session.execute(select(System.id, System.spec)):
                    self.specs[system_id] = spec
                service.refresh_canaries(session, engine)
            self.source = url.render_as_string(hide_password=True)
        finally:
            dispose(db.engine)

    def get(self, system_id: str | None) -> dict[str, Any] | None:
        return self.specs.get(system_id) if system_id else None


def _finding(detection: Detection, line: int) -> dict[str, Any]:
    f = detection.finding
    document: dict[str, Any] = {
        "detector": detection.detector,
        "version": detection.version,
        "kind": f.kind,
        "archetype": f.archetype,
        "severity": f.severity,
        "confidence": round(float(f.confidence), 4),
        "summary": f.summary,
        "excerpt": f.excerpt,
        "owasp": list(f.owasp),
        "atlas": list(f.atlas),
        "attributes": f.attributes,
    }
    lines = sorted({i.ref for i in detection.items})
    if lines != [line]:  # a stateful finding resting on earlier lines too
        document["lines"] = lines
    return document


def scan(
    file: Annotated[
        str, typer.Argument(help="JSON Lines of interactions or plain text lines; - for stdin.")
    ] = "-",
    system: Annotated[
        str | None,
        typer.Option(help="The AI system the interactions belong to (its detection settings)."),
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option(help="Read the system from these inventory YAML files, not the database."),
    ] = None,
    fail_on_findings: Annotated[
        bool, typer.Option("--fail-on-findings", help="Exit 3 when anything was found.")
    ] = False,
) -> None:
    """Run the detectors over a file offline, without a server: one JSON object per input
    line, `{"line": N, "findings": [...]}` (`[]` when clean). A JSON line is an interaction
    (`{"input", "output", "context": [...], "tool_calls": [...]}`); any other line is text a
    user sent. Lines that cannot be read answer `{"line": N, "error": ...}` and the command
    exits 2 after the rest are scanned."""
    engine = DetectionEngine()
    specs = _Specs(inventory, engine)
    if system is not None and specs.get(system) is None:
        raise NotFound(
            f"No AI system '{system}' in {specs.source}. Name one of: "
            f"{', '.join(sorted(specs.specs)) or '(the inventory is empty)'}, or leave out "
            "--system to scan with the default settings."
        )
    source: IO[str] = sys.stdin if file == "-" else _open(file)
    write = sys.stdout.write
    bad = found = 0
    try:
        for number, line in enumerate(source, start=1):
            try:
                item = item_from_line(line, number=number, system_id=system)
            except InvalidInput as exc:
                bad += 1
                problems = [p.as_dict() for p in exc.problems]
                answer = {"line": number, "error": exc.detail, "problems": problems}
                write(orjson.dumps(answer).decode() + "\n")
                continue
            if item.system_id is not None and specs.get(item.system_id) is None:
                bad += 1
                message = f"no AI system '{item.system_id}' in {specs.source}"
                write(orjson.dumps({"line": number, "error": message}).decode() + "\n")
                continue
            detections = engine.run([item], specs.get)
            found += len(detections)
            findings = [_finding(d, number) for d in detections]
            write(orjson.dumps({"line": number, "findings": findings}).decode() + "\n")
    finally:
        if source is not sys.stdin:
            source.close()
    sys.stdout.flush()
    if bad:
        typer.echo(f"{bad} line(s) could not be read; see their 'error'", err=True)
        raise typer.Exit(2)
    if fail_on_findings and found:
        raise typer.Exit(3)


def _open(file: str) -> IO[str]:
    path = Path(file)
    if not path.is_file():
        raise InvalidInput(
            f"{file} is not a file. Give a file of JSON Lines or text, or - for stdin."
        )
    return path.open(encoding="utf-8", errors="replace")
