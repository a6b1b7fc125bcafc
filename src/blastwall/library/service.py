"""The only way into the known-incident library: importing the sources, searching, reading.

Two sources, both shipped with the installation (nothing is fetched):

* `genai-incidents`: the PyPI package of that name, about 15,000 labelled AI security
  incidents (data under CC BY 4.0, Emmanuel G. Jr. and contributors);
* `atlas`: the case studies of the pinned MITRE ATLAS copy (Apache-2.0, MITRE).

An import is idempotent: records are keyed by source and the source's id, and a second
import updates them in place. ATLAS ids and OWASP codes (LLM codes with the edition the
source states) are checked against the taxonomy tables: unknown ones are dropped and
counted. The source's codes are also kept as it gives them under `classifications`.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import bm25s
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, NotFound, NotInstalled
from blastwall.library.models import KnownIncident
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.taxonomy import taxonomy

__all__ = [
    "SOURCES",
    "ImportResult",
    "get",
    "import_source",
    "installed_sources",
    "list_known",
    "search",
]

GENAI_ATTRIBUTION = (
    "genai-incidents {version} (https://github.com/emmanuelgjr/genai_incidents), "
    "Emmanuel G. Jr. and contributors, CC BY 4.0"
)
ATLAS_ATTRIBUTION = (
    "MITRE ATLAS {version} case study (https://atlas.mitre.org), © MITRE, Apache-2.0"
)
SOURCES = ("genai-incidents", "atlas")
GENAI_NOT_INSTALLED = (
    "The genai-incidents data set is not installed: pip install 'blastwall[library]'. "
    "The ATLAS case studies ship with Blastwall: blastwall library import --source atlas."
)
BATCH = 1000


@dataclass
class ImportResult:
    source: str
    version: str
    added: int = 0
    updated: int = 0
    unknown_ids: dict[str, int] = field(default_factory=dict)


def installed_sources() -> tuple[str, ...]:
    """The sources whose data is installed: genai-incidents comes with the `library` extra."""
    genai = importlib.util.find_spec("genai_incidents") is not None
    return tuple(source for source in SOURCES if genai or source != "genai-incidents")


def _genai_records() -> tuple[str, Iterator[dict[str, Any]]]:
    try:
        import genai_incidents
    except ModuleNotFoundError as missing:
        if missing.name != "genai_incidents":
            raise
        raise NotInstalled(GENAI_NOT_INSTALLED) from None

    manifest = genai_incidents.build_manifest()
    version = str(manifest.get("version", ""))
    editions = manifest.get("taxonomy_versions") or {}
    attribution = GENAI_ATTRIBUTION.format(version=version)

    def records() -> Iterator[dict[str, Any]]:
        for raw in genai_incidents.load_incidents():
            yield {
                "external_id": str(raw["id"]),
                "title": str(raw.get("title") or raw["id"])[:500],
                "occurred": str(raw.get("date") or "")[:20] or None,
                "year": raw.get("year") if isinstance(raw.get("year"), int) else None,
                "severity": raw.get("severity"),
                "description": str(raw.get("description") or ""),
                "url": raw.get("primary_reference"),
                "tags": [str(t) for t in raw.get("tags") or []],
                "atlas": [str(t) for t in raw.get("mitre_atlas") or []],
                "owasp": [f"{c}:{editions.get('owasp_llm')}" for c in raw.get("owasp_llm") or []]
                + [str(c) for c in raw.get("owasp_asi") or []],
                "classifications": {
                    "owasp_llm": raw.get("owasp_llm") or [],
                    "owasp_llm_edition": editions.get("owasp_llm"),
                    "owasp_asi": raw.get("owasp_asi") or [],
                    "nist_ai_rmf": raw.get("nist_ai_rmf") or [],
                    "attack_vector": raw.get("attack_vector"),
                    "cve_ids": raw.get("cve_ids") or [],
                },
                "attribution": attribution,
            }

    return version, records()


def _atlas_records() -> tuple[str, Iterator[dict[str, Any]]]:
    tables = taxonomy()
    attribution = ATLAS_ATTRIBUTION.format(version=tables.atlas_version)

    def records() -> Iterator[dict[str, Any]]:
        for entry in tables.of("atlas"):
            if entry.kind != "case-study":
                continue
            yield {
                "external_id": entry.id,
                "title": entry.name[:500],
                "occurred": None,
                "year": None,
                "severity": None,
                "description": entry.description,
                "url": entry.url,
                "tags": [],
                "atlas": list(entry.related),
                "owasp": [],
                "classifications": {},
                "attribution": attribution,
            }

    return tables.atlas_version, records()


_READERS: dict[str, Callable[[], tuple[str, Iterator[dict[str, Any]]]]] = {
    "genai-incidents": _genai_records,
    "atlas": _atlas_records,
}


def import_source(
    session: Session,
    *,
    source: str,
    actor: Principal,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import (or refresh) one source; `progress` is called with the records done so far."""
    actor.require(Permission.write_inventory)
    reader = _READERS.get(source)
    if reader is None:
        raise InvalidInput(f"No library source '{source}'; choose one of {', '.join(SOURCES)}.")
    version, records = reader()
    result = ImportResult(source=source, version=version)
    tables = taxonomy()
    existing = {
        external_id: row_id
        for external_id, row_id in session.execute(
            select(KnownIncident.external_id, KnownIncident.id).where(
                KnownIncident.source == source
            )
        )
    }
    now = utcnow()
    batch: list[dict[str, Any]] = []
    done = 0

    def flush() -> None:
        new = [r for r in batch if r["external_id"] not in existing]
        old = [
            r | {"id": existing[r["external_id"]]} for r in batch if r["external_id"] in existing
        ]
        if new:
            session.execute(KnownIncident.__table__.insert(), new)  # type: ignore[attr-defined]
        for row in old:
            record = session.get(KnownIncident, row["id"])
            if record is not None:
                for key, value in row.items():
                    if key != "id":
                        setattr(record, key, value)
        result.added += len(new)
        result.updated += len(old)
        batch.clear()

    for record in records:
        checked = {}
        for name in ("atlas", "owasp"):
            checked[name] = [i for i in record[name] if i in tables]
            for unknown in set(record[name]) - set(checked[name]):
                result.unknown_ids[unknown] = result.unknown_ids.get(unknown, 0) + 1
        batch.append(record | checked | {"source": source, "imported_at": now})
        done += 1
        if len(batch) >= BATCH:
            flush()
            if progress is not None:
                progress(done)
    flush()
    if progress is not None:
        progress(done)
    session.flush()
    return result


# --- search --------------------------------------------------------------------------------


@dataclass
class _Index:
    ids: list[int]
    retriever: bm25s.BM25 | None
    version: Any


_indexes: dict[str, _Index] = {}
_lock = threading.Lock()


def _index(session: Session) -> _Index:
    key = str(session.get_bind().engine.url)
    version = tuple(
        session.execute(
            select(func.count(KnownIncident.id), func.max(KnownIncident.imported_at))
        ).one()
    )
    current = _indexes.get(key)
    if current is not None and current.version == version:
        return current
    with _lock:
        current = _indexes.get(key)
        if current is not None and current.version == version:
            return current
        rows = session.execute(
            select(KnownIncident.id, KnownIncident.title, KnownIncident.description).order_by(
                KnownIncident.id
            )
        ).all()
        retriever = None
        if rows:
            tokens = bm25s.tokenize(
                [f"{title} {description}" for _, title, description in rows],
                stopwords="en",
                show_progress=False,
            )
            if tokens.vocab:
                retriever = bm25s.BM25()
                retriever.index(tokens, show_progress=False)
        built = _Index([row_id for row_id, _, _ in rows], retriever, version)
        _indexes[key] = built
        return built


def search(
    session: Session, *, text: str, principal: Principal, limit: int = 10
) -> list[tuple[KnownIncident, float]]:
    """The known incidents most similar to `text` (BM25 over title and description), with
    their scores, best first."""
    principal.require(Permission.read)
    index = _index(session)
    if index.retriever is None or not text.strip():
        return []
    tokens = bm25s.tokenize([text], stopwords="en", show_progress=False)
    if not tokens.vocab:
        return []
    found, scores = index.retriever.retrieve(
        tokens, k=min(limit, len(index.ids)), show_progress=False
    )
    hits = [
        (index.ids[int(position)], float(score))
        for position, score in zip(found[0], scores[0], strict=True)
        if score > 0
    ]
    rows = {
        row.id: row
        for row in session.scalars(
            select(KnownIncident).where(KnownIncident.id.in_([h for h, _ in hits]))
        )
    }
    return [(rows[h], score) for h, score in hits if h in rows]


def list_known(
    session: Session,
    *,
    principal: Principal,
    source: str | None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[KnownIncident], str | None]:
    principal.require(Permission.read)
    query = select(KnownIncident).order_by(KnownIncident.id)
    if source:
        query = query.where(KnownIncident.source == source)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(KnownIncident.id > after[0])
    return fetch_page(session, query, limit=limit)


def get(session: Session, *, known_id: int, principal: Principal) -> KnownIncident:
    principal.require(Permission.read)
    row = session.get(KnownIncident, known_id)
    if row is None:
        raise NotFound(f"No known incident {known_id}; `blastwall library search TEXT` finds them.")
    return row
