"""Evidence bundles taken apart and written back: tests that alter a member, drop one or add
one rezip the rest in Blastwall's canonical layout, so that only the change is wrong."""

from __future__ import annotations

import io
import zipfile

from blastwall.evidence.bundle.layout import Stream, add_member


def read_members(data: bytes) -> list[tuple[str, bytes]]:
    """The bundle's members, names and bytes, in their order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(i.filename, archive.read(i)) for i in archive.infolist()]


def rezip(members: list[tuple[str, bytes]]) -> bytes:
    """The members written back in the canonical layout: a well-formed zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(Stream(out.write), "w", zipfile.ZIP_STORED) as archive:
        for name, content in members:
            add_member(archive, name, [content], len(content))
    return out.getvalue()
