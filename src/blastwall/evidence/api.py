"""Evidence and hunt routes: items, custody, holds, grants, export, the ledger, retro-hunts."""

from __future__ import annotations

import logging
import tempfile
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from blastwall.auth.roles import Permission
from blastwall.dependencies import (
    IncidentId,
    ItemId,
    PageDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    audit_object,
    get_db,
)
from blastwall.evidence import custody, flows, hunt, service, verify
from blastwall.evidence.models import EvidenceItem, Hunt, LegalHold
from blastwall.evidence.schemas import (
    AccessIn,
    AttachIn,
    AttachOut,
    CollectIn,
    ContentOut,
    GrantIn,
    GrantOut,
    HoldIn,
    HoldOut,
    HuntIn,
    HuntMatchOut,
    HuntOut,
    ItemOut,
    LedgerReportOut,
    RecordOut,
    ReproductionIn,
    SnapshotIn,
)
from blastwall.evidence.store import Vault
from blastwall.evidence.witness import Witness
from blastwall.gate import too_large
from blastwall.pagination import Page

log = logging.getLogger("blastwall.evidence")

router = APIRouter(tags=["evidence"])
hunts_router = APIRouter(prefix="/hunts", tags=["hunts"])


def _hold(incident_id: int, row: LegalHold | None) -> HoldOut:
    if row is None:
        return HoldOut(incident_id=incident_id, held=False)
    return HoldOut(
        incident_id=incident_id,
        held=True,
        reason=row.reason,
        placed_by=row.placed_by,
        placed_at=row.placed_at,
    )


def _item(row: EvidenceItem) -> ItemOut:
    return ItemOut.model_validate(row)


def _witness(settings: SettingsDep) -> Witness:
    """Where checkpoints are written outside the database."""
    return Witness.of(settings)


def _vault(settings: SettingsDep) -> Vault:
    """The blob store and the signing key."""
    return Vault.of(settings)


WitnessDep = Annotated[Witness, Depends(_witness)]
VaultDep = Annotated[Vault, Depends(_vault)]


# --- ledger ---------------------------------------------------------------------------------


@router.get("/evidence/ledger/verify", response_model=LedgerReportOut)
def verify_ledger(
    session: SessionDep,
    principal: PrincipalDep,
    vault: VaultDep,
    witness: WitnessDep,
    blobs: Annotated[
        bool, Query(description="Also read every kept item's bytes and check their hash.")
    ] = False,
) -> LedgerReportOut:
    """Check the whole evidence ledger: hashes, links, columns, checkpoints (against the
    checkpoint files outside the database too), and the items, legal holds and grants
    against the records; with `blobs`, every kept item's bytes in the vault too."""
    principal.require(Permission.read_audit)
    report = verify.verify_ledger(session, vault=vault, witness=witness, blobs=blobs)
    return LedgerReportOut(
        ok=report.ok,
        records=report.records,
        checkpoints=report.checkpoints,
        witnessed=report.witnessed,
        head_seq=report.head_seq,
        head_hash=report.last_hash,
        problems=report.problems,
        notes=report.notes,
    )


@router.get("/evidence/pubkey", response_class=PlainTextResponse)
def pubkey(principal: PrincipalDep, vault: VaultDep) -> str:
    """The public key that verifies checkpoints and bundles (PEM)."""
    return vault.key().public_pem()


@router.post("/evidence/expire", response_model=list[ItemOut])
def expire(
    session: SessionDep, principal: PrincipalDep, vault: VaultDep, settings: SettingsDep
) -> list[ItemOut]:
    """Expire evidence past the retention period whose incident is not on legal hold."""
    days = settings.evidence_retention_days
    return [_item(i) for i in custody.expire(session, vault=vault, actor=principal, days=days)]


# --- items ----------------------------------------------------------------------------------


@router.get("/incidents/{incident_id}/evidence", response_model=Page[ItemOut])
def list_items(
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    kind: Annotated[str | None, Query(max_length=30)] = None,
) -> Page[ItemOut]:
    """The incident's evidence items, oldest first."""
    rows, next_cursor = service.list_items(
        session,
        incident_id=incident_id,
        principal=principal,
        limit=page.limit,
        cursor=page.cursor,
        kind=kind,
    )
    return Page(items=[_item(r) for r in rows], next=next_cursor)


@router.post("/incidents/{incident_id}/evidence/files", response_model=ItemOut, status_code=201)
async def add_file(
    request: Request,
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    name: Annotated[str, Query(min_length=1, max_length=300, description="The file's name.")],
    note: Annotated[str, Query(max_length=2000)] = "",
) -> ItemOut:
    """Add a file as evidence: the request body is the file, byte for byte; its
    Content-Type is kept."""
    # The gate (api._Gate) read the body within BLASTWALL_EVIDENCE_MAX_UPLOAD_BYTES, chunked
    # or not, before this runs.
    data = await request.body()
    if len(data) > settings.evidence_max_upload_bytes:
        raise too_large(
            settings.evidence_max_upload_bytes,
            "Add a larger file with `blastwall evidence add` on the server.",
        )
    media = request.headers.get("content-type", "application/octet-stream")[:100]
    item = flows.add_file(
        session,
        vault=Vault.of(settings),
        incident_id=incident_id,
        data=data,
        name=name,
        media_type=media,
        note=note,
        actor=principal,
    )
    audit_object(request, f"evidence:{item.id}")
    return _item(item)


@router.post("/incidents/{incident_id}/evidence/collect", response_model=list[ItemOut])
def collect(
    incident_id: IncidentId,
    body: CollectIn,
    session: SessionDep,
    principal: PrincipalDep,
    vault: VaultDep,
) -> list[ItemOut]:
    """Preserve the interactions behind signals (a later signal, say), or named directly."""
    items = flows.collect(
        session,
        vault=vault,
        incident_id=incident_id,
        actor=principal,
        signal_ids=body.signals,
        interaction_ids=body.interactions,
    )
    return [_item(i) for i in items]


@router.post("/incidents/{incident_id}/evidence/snapshot", response_model=ItemOut, status_code=201)
def snapshot(
    request: Request,
    incident_id: IncidentId,
    body: SnapshotIn,
    session: SessionDep,
    principal: PrincipalDep,
    vault: VaultDep,
) -> ItemOut:
    """Preserve the inventory state of the incident's systems and their recent changes."""
    item = flows.snapshot_config(
        session, vault=vault, incident_id=incident_id, actor=principal, note=body.note
    )
    audit_object(request, f"evidence:{item.id}")
    return _item(item)


@router.post(
    "/incidents/{incident_id}/evidence/reproductions", response_model=ItemOut, status_code=201
)
def add_reproduction(
    request: Request,
    incident_id: IncidentId,
    body: ReproductionIn,
    session: SessionDep,
    principal: PrincipalDep,
    vault: VaultDep,
) -> ItemOut:
    """Record a reproduction attempt."""
    item = flows.add_reproduction(
        session, vault=vault, incident_id=incident_id, attempt=body, actor=principal
    )
    audit_object(request, f"evidence:{item.id}")
    return _item(item)


@router.post("/incidents/{incident_id}/evidence/export")
def export(
    incident_id: IncidentId,
    body: AccessIn,
    session: SessionDep,
    principal: PrincipalDep,
    vault: VaultDep,
    witness: WitnessDep,
) -> Response:
    """The incident's evidence bundle (a zip); `blastwall evidence verify` checks it. The
    incident's evidence is verified against the ledger first: 409 with the `problems` when
    it does not verify, and nothing is exported."""
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115
    try:
        flows.export_incident(
            session,
            vault=vault,
            incident_id=incident_id,
            out=spool,
            reason=body.reason,
            actor=principal,
            witness=witness,
        )
    except BaseException:
        spool.close()
        raise
    spool.seek(0)

    def chunks() -> object:
        with spool:
            while chunk := spool.read(1 << 20):
                yield chunk

    return StreamingResponse(
        chunks(),  # type: ignore[arg-type]
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="incident-{incident_id}-evidence.zip"'
        },
    )


@router.get("/incidents/{incident_id}/evidence/hold", response_model=HoldOut)
def get_hold(incident_id: IncidentId, session: SessionDep, principal: PrincipalDep) -> HoldOut:
    incident = service.incident_for(session, incident_id=incident_id, principal=principal)
    return _hold(incident.id, custody.hold_of(session, incident_id=incident.id))


@router.post("/incidents/{incident_id}/evidence/hold", response_model=HoldOut)
def place_hold(
    incident_id: IncidentId, body: HoldIn, session: SessionDep, principal: PrincipalDep
) -> HoldOut:
    """Place the incident's evidence on legal hold (legal, admin)."""
    row = custody.place_hold(session, incident_id=incident_id, reason=body.reason, actor=principal)
    return _hold(incident_id, row)


@router.post("/incidents/{incident_id}/evidence/hold/release", response_model=HoldOut)
def release_hold(
    incident_id: IncidentId, body: HoldIn, session: SessionDep, principal: PrincipalDep
) -> HoldOut:
    """Lift the legal hold (legal, admin)."""
    custody.release_hold(session, incident_id=incident_id, reason=body.reason, actor=principal)
    return HoldOut(incident_id=incident_id, held=False)


@router.post("/incidents/{incident_id}/evidence/grants", response_model=GrantOut, status_code=201)
def grant(
    incident_id: IncidentId, body: GrantIn, session: SessionDep, principal: PrincipalDep
) -> GrantOut:
    """Give someone the full (unredacted) view of the incident's evidence."""
    row = custody.grant_full_view(
        session, incident_id=incident_id, to=body.to, reason=body.reason, actor=principal
    )
    return GrantOut.model_validate(row)


@router.get("/evidence/{item_id}", response_model=ItemOut)
def get_item(item_id: ItemId, session: SessionDep, principal: PrincipalDep) -> ItemOut:
    """An item's description (not its content: that is `POST .../view`, recorded)."""
    return _item(service.get_item(session, item_id=item_id, principal=principal))


@router.post("/evidence/{item_id}/view", response_model=ContentOut)
def view(
    item_id: ItemId, body: AccessIn, session: SessionDep, principal: PrincipalDep, vault: VaultDep
) -> ContentOut:
    """Read an item's content; the view, and why, is recorded in its chain of custody.
    Without the full view, personal data and secrets are masked."""
    item, data, full = custody.read_item(
        session, vault=vault, item_id=item_id, principal=principal, reason=body.reason
    )
    content, withheld = custody.render(item, data, full=full)
    return ContentOut(
        item=_item(item), view="full" if full else "redacted", content=content, withheld=withheld
    )


@router.post("/evidence/{item_id}/download")
def download(
    item_id: ItemId, body: AccessIn, session: SessionDep, principal: PrincipalDep, vault: VaultDep
) -> Response:
    """The item's original bytes (needs the full view); the download is recorded."""
    item, data, _ = custody.read_item(
        session,
        vault=vault,
        item_id=item_id,
        principal=principal,
        reason=body.reason,
        download=True,
    )
    return Response(
        data,
        media_type=item.media_type,
        headers={"X-Content-SHA256": item.sha256, "Content-Disposition": "attachment"},
    )


@router.get("/evidence/{item_id}/custody", response_model=Page[RecordOut])
def item_custody(
    item_id: ItemId, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[RecordOut]:
    """The item's chain of custody, oldest first: who did what, when and why."""
    rows, next_cursor = custody.custody(
        session, item_id=item_id, principal=principal, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[RecordOut.of(r) for r in rows], next=next_cursor)


@router.post("/evidence/{item_id}/delete", response_model=ItemOut)
def delete_item(
    item_id: ItemId, body: AccessIn, session: SessionDep, principal: PrincipalDep, vault: VaultDep
) -> ItemOut:
    """Delete an item's bytes (admin; refused under legal hold). The record stays."""
    return _item(
        custody.delete_item(
            session, vault=vault, item_id=item_id, reason=body.reason, actor=principal
        )
    )


# --- hunts ----------------------------------------------------------------------------------


def _hunt(row: Hunt) -> HuntOut:
    return HuntOut.model_validate(row)


@hunts_router.post("", response_model=HuntOut, status_code=202)
def create_hunt(
    request: Request,
    background: BackgroundTasks,
    body: Annotated[HuntIn, Body()],
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> HuntOut:
    """Start a retro-hunt over stored interactions; it runs in the background. Poll
    `GET /hunts/{id}` for progress (`scanned` of `total`), then read its matches."""
    row = hunt.create_hunt(session, data=body, actor=principal)
    # The hunt runs once the response is sent: after the request's commit.
    background.add_task(hunt.run_in_background, get_db(request), row.id, settings.hunt_workers)
    audit_object(request, f"hunt:{row.id}")
    return _hunt(row)


@hunts_router.get("", response_model=Page[HuntOut])
def list_hunts(session: SessionDep, principal: PrincipalDep, page: PageDep) -> Page[HuntOut]:
    rows, next_cursor = hunt.list_hunts(
        session, principal=principal, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[_hunt(r) for r in rows], next=next_cursor)


@hunts_router.get("/{hunt_id}", response_model=HuntOut)
def get_hunt(hunt_id: ItemId, session: SessionDep, principal: PrincipalDep) -> HuntOut:
    return _hunt(hunt.get_hunt(session, hunt_id=hunt_id, principal=principal))


@hunts_router.get("/{hunt_id}/matches", response_model=Page[HuntMatchOut])
def list_matches(
    hunt_id: ItemId, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[HuntMatchOut]:
    """The interactions a hunt found, with a masked excerpt of each match."""
    rows, next_cursor = hunt.list_matches(
        session, hunt_id=hunt_id, principal=principal, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[HuntMatchOut.model_validate(r) for r in rows], next=next_cursor)


@hunts_router.post("/{hunt_id}/attach", response_model=AttachOut)
def attach(
    hunt_id: ItemId, body: AttachIn, session: SessionDep, principal: PrincipalDep, vault: VaultDep
) -> AttachOut:
    """Attach a finished hunt to an incident: its matches become evidence, and the affected
    conversations and users go on the timeline."""
    items, conversations, users = flows.attach_hunt(
        session, vault=vault, hunt_id=hunt_id, incident_id=body.incident, actor=principal
    )
    return AttachOut(
        incident_id=body.incident,
        items=[i.id for i in items],
        conversations=conversations,
        users=users,
    )
