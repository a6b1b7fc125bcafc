"""`blastwall evidence ...` (`blastwall hunt` is in `evidence.hunt.commands`)."""

from __future__ import annotations

import mimetypes
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from blastwall.console import (
    audit,
    clean,
    operator,
    out,
    print_json,
    print_table,
    session_scope,
)
from blastwall.errors import InvalidInput, KeyFileError, Problem
from blastwall.evidence import custody, flows, service
from blastwall.evidence import verify as verification
from blastwall.evidence.bundle import verify_bundle
from blastwall.evidence.ledger import read_key
from blastwall.evidence.schemas import (
    ItemOut,
    RecordOut,
    ReproductionIn,
)
from blastwall.evidence.store import Vault
from blastwall.evidence.witness import Witness
from blastwall.settings import get_settings

app = typer.Typer(
    help="Evidence: the vault, chain of custody, legal hold, bundles and their verification.",
    no_args_is_help=True,
)
IncidentArg = Annotated[int, typer.Argument(help="The incident's number.", min=1)]
ItemArg = Annotated[int, typer.Argument(help="The evidence item's id.", min=1)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReasonOpt = Annotated[
    str, typer.Option(help="Why (required): recorded in the chain of custody.", min=1)
]


def _items(rows: list[ItemOut], json: bool) -> None:
    if json:
        print_json(rows)
        return
    print_table(
        ["id", "kind", "name", "size", "sha256", "state", "collected by", "collected at"],
        [
            (i.id, i.kind, i.name, i.size, i.sha256[:16], i.state, i.collected_by, i.collected_at)
            for i in rows
        ],
    )


@app.command("list")
def list_(
    incident_id: IncidentArg,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    json: JsonOpt = False,
) -> None:
    """List an incident's evidence, oldest first."""
    with session_scope() as session:
        rows, _ = service.list_items(
            session, incident_id=incident_id, principal=operator(), limit=500, kind=kind
        )
        items = [ItemOut.model_validate(r) for r in rows]
    _items(items, json)


@app.command("add")
def add(
    incident_id: IncidentArg,
    file: Annotated[
        Path, typer.Argument(help="The file to preserve.", exists=True, dir_okay=False)
    ],
    note: Annotated[str, typer.Option(help="What the file is and where it came from.")] = "",
    json: JsonOpt = False,
) -> None:
    """Add a file as evidence (a screenshot, an e-mail, a log)."""
    media = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    with session_scope() as session:
        item = flows.add_file(
            session,
            vault=Vault.of(get_settings()),
            incident_id=incident_id,
            data=file.read_bytes(),
            name=file.name,
            media_type=media,
            note=note,
            actor=operator(),
        )
        audit(session, command="evidence add", object=f"evidence:{item.id}")
        shown = ItemOut.model_validate(item)
    if json:
        print_json(shown)
    else:
        out.print(f"evidence {shown.id} added to incident {incident_id}: sha256 {shown.sha256}")


@app.command("collect")
def collect(
    incident_id: IncidentArg,
    signal: Annotated[list[int] | None, typer.Option(help="A signal (repeat).")] = None,
    interaction: Annotated[list[int] | None, typer.Option(help="An interaction (repeat).")] = None,
    json: JsonOpt = False,
) -> None:
    """Preserve the interactions behind signals, or named directly, with their trace trees."""
    if not signal and not interaction:
        raise InvalidInput("Nothing to collect.", [Problem("--signal/--interaction", "give one")])
    with session_scope() as session:
        items = flows.collect(
            session,
            vault=Vault.of(get_settings()),
            incident_id=incident_id,
            actor=operator(),
            signal_ids=signal or [],
            interaction_ids=interaction or [],
        )
        audit(session, command="evidence collect", object=f"incident:{incident_id}")
        shown = [ItemOut.model_validate(i) for i in items]
    _items(shown, json)


@app.command("snapshot")
def snapshot(incident_id: IncidentArg, note: str = "", json: JsonOpt = False) -> None:
    """Preserve the inventory state of the incident's systems and their recent changes."""
    with session_scope() as session:
        item = flows.snapshot_config(
            session,
            vault=Vault.of(get_settings()),
            incident_id=incident_id,
            actor=operator(),
            note=note,
        )
        audit(session, command="evidence snapshot", object=f"evidence:{item.id}")
        shown = ItemOut.model_validate(item)
    _items([shown], json)


@app.command("reproduce")
def reproduce(
    incident_id: IncidentArg,
    input: Annotated[str, typer.Option(help="What was sent.")],
    result: Annotated[str, typer.Option(help="What came back.")],
    differed: Annotated[bool, typer.Option("--differed/--same", help="Did it differ?")],
    model_version: Annotated[str, typer.Option(help="The model version it ran on.")] = "",
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE of the environment.")] = None,
    note: str = "",
) -> None:
    """Record a reproduction attempt."""
    environment = dict(e.partition("=")[::2] for e in env or [])
    attempt = ReproductionIn(
        input=input,
        result=result,
        differed=differed,
        model_version=model_version,
        environment=environment,
        note=note,
    )
    with session_scope() as session:
        item = flows.add_reproduction(
            session,
            vault=Vault.of(get_settings()),
            incident_id=incident_id,
            attempt=attempt,
            actor=operator(),
        )
        audit(session, command="evidence reproduce", object=f"evidence:{item.id}")
        out.print(f"evidence {item.id}: reproduction attempt recorded")


@app.command("show")
def show(item_id: ItemArg, reason: ReasonOpt, json: JsonOpt = False) -> None:
    """Show an item's content (masked without the full view); the view is recorded."""
    with session_scope() as session:
        item, data, full = custody.read_item(
            session,
            vault=Vault.of(get_settings()),
            item_id=item_id,
            principal=operator(),
            reason=reason,
        )
        content, withheld = custody.render(item, data, full=full)
        described = ItemOut.model_validate(item)
    if json:
        print_json({"item": described, "view": "full" if full else "redacted", "content": content})
        return
    out.print(f"item {item_id} ({described.kind}, {'full' if full else 'redacted'} view)")
    if withheld:
        out.print(withheld)
    elif isinstance(content, str):
        sys.stdout.write(clean(content) + "\n")
    else:
        print_json(content)


@app.command("get")
def get(
    item_id: ItemArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the bytes.")],
    reason: ReasonOpt,
) -> None:
    """Write an item's original bytes to a file (needs the full view); recorded."""
    with session_scope() as session:
        item, data, _ = custody.read_item(
            session,
            vault=Vault.of(get_settings()),
            item_id=item_id,
            principal=operator(),
            reason=reason,
            download=True,
        )
    output.write_bytes(data)
    out.print(f"{output}: {len(data)} bytes, sha256 {item.sha256}")


@app.command("custody")
def custody_(item_id: ItemArg, json: JsonOpt = False) -> None:
    """An item's chain of custody: who did what to it, when and why."""
    with session_scope() as session:
        rows, _ = custody.custody(session, item_id=item_id, principal=operator(), limit=500)
        records = [RecordOut.of(r) for r in rows]
    if json:
        print_json(records)
        return
    print_table(
        ["seq", "at", "action", "actor", "why / details"],
        [
            (r.seq, r.at, r.action, r.actor, r.details.get("reason") or r.details or "")
            for r in records
        ],
    )


@app.command("export")
def export(
    incident_id: IncidentArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The bundle to write (.zip).")],
    reason: ReasonOpt,
) -> None:
    """Export the incident's evidence, timeline and containment snapshots as a bundle anyone
    can verify offline."""
    temp = output.with_name(output.name + ".partial")
    try:
        with session_scope() as session, temp.open("wb") as handle:
            manifest = flows.export_incident(
                session,
                vault=Vault.of(get_settings()),
                incident_id=incident_id,
                out=handle,
                reason=reason,
                actor=operator(),
                witness=Witness.of(get_settings()),
            )
            audit(session, command="evidence export", object=f"incident:{incident_id}")
    except BaseException:
        temp.unlink(missing_ok=True)  # no half-written bundle is left behind
        raise
    temp.replace(output)
    out.print(
        f"{output}: {len(manifest['items'])} items, {manifest['timeline']['entries']} timeline "
        f"entries, {len(manifest['snapshots'])} containment snapshots, ledger records "
        f"{manifest['ledger'][0]['seq']}-{manifest['ledger'][-1]['seq']}, signed by key "
        f"{manifest['key_fingerprint']}. Check it with `blastwall evidence verify {output}`."
    )


@app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="The bundle (.zip).", exists=True, dir_okay=False)],
    pubkey: Annotated[
        Path | None,
        typer.Option(
            help="The signer's public key (PEM, or 64 hex digits).", exists=True, dir_okay=False
        ),
    ] = None,
) -> None:
    """Verify a bundle offline (no server, no database); exit 1 when anything is off."""
    verdict = verify_bundle(bundle, pubkey=pubkey.read_bytes() if pubkey else None)
    for note in verdict.notes:
        out.print(f"note: {note}")
    if not verdict.ok:
        for problem in verdict.problems:
            out.print(f"[red]FAIL[/red] {escape(problem)}", highlight=False, markup=True)
        raise typer.Exit(1)
    out.print(
        f"OK: incident {verdict.incident}, {verdict.items} items, {verdict.timeline_entries} "
        f"timeline entries, {verdict.snapshots} containment snapshots, {verdict.bytes} bytes, "
        f"signed by key {verdict.key_fingerprint}"
    )


@app.command("verify-ledger")
def verify_ledger(
    blobs: Annotated[
        bool, typer.Option("--blobs", help="Also read every kept item's bytes and check them.")
    ] = False,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoints",
            help="A file of checkpoint lines kept elsewhere (what the checkpoint endpoint "
            "received, an old copy) to check the ledger against too (repeat).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Check the whole evidence ledger in the database, its checkpoints against the files
    outside it, and the evidence tables against the ledger; exit 1 when anything is off."""
    with session_scope() as session:
        report = verification.verify_ledger(
            session,
            vault=Vault.of(get_settings()),
            witness=Witness.of(get_settings()),
            blobs=blobs,
            copies=checkpoints or [],
        )
    for note in report.notes:
        out.print(f"note: {escape(note)}", highlight=False)
    for problem in report.problems:
        out.print(f"[red]FAIL[/red] {escape(problem)}", highlight=False, markup=True)
    if not report.ok:
        raise typer.Exit(1)
    out.print(
        f"OK: {report.records} records, head {report.head_seq} {report.last_hash}, "
        f"{report.checkpoints} checkpoints verified, {report.witnessed} checkpoint lines "
        "compared" + (f", {report.blobs} items' bytes checked" if blobs else "")
    )


@app.command("checkpoint")
def checkpoint() -> None:
    """Sign the ledger's current head; the checkpoint goes to the checkpoint file (and the
    copy and endpoint configured) too."""
    with session_scope() as session:
        settings = get_settings()
        row = service.checkpoint(
            session, witness=Witness.of(settings), key=Vault.of(settings).key()
        )
        out.print(f"checkpoint {row.id}: record {row.seq} {row.head_hash}")


@app.command("pubkey")
def pubkey() -> None:
    """Print the public key that verifies checkpoints and bundles (PEM)."""
    path = get_settings().signing_key_path
    try:
        sys.stdout.write(read_key(path).public_pem())
    except KeyFileError as exc:
        raise InvalidInput(f"{exc}. Run `blastwall init` to make the key.") from None


@app.command("hold")
def hold(incident_id: IncidentArg, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
    """Place an incident's evidence on legal hold: nothing of it is deleted or expires."""
    with session_scope() as session:
        custody.place_hold(session, incident_id=incident_id, reason=reason, actor=operator())
        audit(session, command="evidence hold", object=f"incident:{incident_id}")
    out.print(f"incident {incident_id}: evidence on legal hold")


@app.command("release")
def release(incident_id: IncidentArg, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
    """Lift an incident's legal hold."""
    with session_scope() as session:
        custody.release_hold(session, incident_id=incident_id, reason=reason, actor=operator())
        audit(session, command="evidence release", object=f"incident:{incident_id}")
    out.print(f"incident {incident_id}: legal hold lifted")


@app.command("grant")
def grant(
    incident_id: IncidentArg,
    to: Annotated[str, typer.Option(help="Who gets the full view (a token's name).")],
    reason: Annotated[str, typer.Option(help="Why.")],
) -> None:
    """Give someone the full (unredacted) view of an incident's evidence; recorded."""
    with session_scope() as session:
        custody.grant_full_view(
            session, incident_id=incident_id, to=to, reason=reason, actor=operator()
        )
        audit(session, command="evidence grant", object=f"incident:{incident_id}")
    out.print(f"{to} has the full view of incident {incident_id}'s evidence")


@app.command("delete")
def delete(item_id: ItemArg, reason: Annotated[str, typer.Option(help="Why.")]) -> None:
    """Delete an item's bytes (refused under legal hold); its records stay."""
    with session_scope() as session:
        custody.delete_item(
            session,
            vault=Vault.of(get_settings()),
            item_id=item_id,
            reason=reason,
            actor=operator(),
        )
        audit(session, command="evidence delete", object=f"evidence:{item_id}")
    out.print(f"evidence {item_id} deleted")


@app.command("expire")
def expire() -> None:
    """Expire evidence past the retention period (BLASTWALL_EVIDENCE_RETENTION_DAYS) unless
    its incident is on legal hold."""
    with session_scope() as session:
        gone = custody.expire(
            session,
            vault=Vault.of(get_settings()),
            actor=operator(),
            days=get_settings().evidence_retention_days,
        )
        audit(session, command="evidence expire", object=None)
    out.print(f"{len(gone)} items expired")
