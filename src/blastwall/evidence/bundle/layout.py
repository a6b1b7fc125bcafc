"""The bundle's canonical layout: its members' names and order, and a zip written the same
way every time (members stored uncompressed, fixed timestamps and attributes, streamed with
data descriptors)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

FORMAT = "blastwall-evidence-bundle"
#: Version 2 adds the timeline and the containment snapshots; version 1 bundles still verify.
VERSION = 2
TIMELINE = "timeline.json"
#: The incident's published status updates, as each audience got them (bundles since the
#: status updates came; older ones have none).
UPDATES = "updates.json"
CHUNK = 4 << 20
_STAMP = (1980, 1, 1, 0, 0, 0)
SIGNED = ("manifest.json", "manifest.sig")
#: The members before the snapshots and items, in the order they are written.
LEADING = (
    "README.md",
    "SHA256SUMS",
    "pubkey.pem",
    "checkpoint.json",
    "checkpoint.sig",
    TIMELINE,
    UPDATES,
)


def _safe(name: str, default: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or default)[:120]


def item_path(item_id: int, name: str) -> str:
    return f"items/{item_id}-{_safe(name, 'item')}"


def snapshot_path(meta: dict[str, Any]) -> str:
    name = _safe(f"{meta['system_id']}-{meta['purpose']}", "snapshot")
    return f"snapshots/{meta['id']}-{name}.json"


class Stream:
    """A write-only, non-seekable sink: the zip is always streamed, so that the layout does
    not depend on whether the target could seek."""

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write
        self.pos = 0

    def write(self, data: bytes) -> int:
        self._write(data)
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def seekable(self) -> bool:
        return False


def member_info(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_STAMP)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    info.file_size = size
    return info


def add_member(archive: zipfile.ZipFile, name: str, chunks: Iterable[bytes], size: int) -> None:
    with archive.open(member_info(name, size), "w") as dest:
        for chunk in chunks:
            dest.write(chunk)


def readme(incident_id: int) -> str:
    return (
        (Path(__file__).parent.parent / "bundle_readme.md")
        .read_text()
        .replace("{incident}", str(incident_id))
    )
