"""Verifying a bundle offline: one pass over its members that hashes each one and writes it
again in the canonical layout into a sink comparing with the original bytes; then the
checks of its contents (`checks.py`)."""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from blastwall.evidence.bundle.checks import Verdict, check_contents
from blastwall.evidence.bundle.layout import CHUNK, LEADING, SIGNED, Stream, member_info


class _Comparer:
    """A sink that compares what is written to it with the original file's bytes."""

    def __init__(self, original: IO[bytes]) -> None:
        self.original = original
        self.pos = 0
        self.first_difference: int | None = None

    def write(self, data: bytes) -> int:
        theirs = self.original.read(len(data))
        if theirs != data and self.first_difference is None:
            common = next(
                (i for i, (a, b) in enumerate(zip(theirs, data, strict=False)) if a != b),
                min(len(theirs), len(data)),
            )
            self.first_difference = self.pos + common
        self.pos += len(data)
        return len(data)


def _data_offset(raw: IO[bytes], info: zipfile.ZipInfo) -> int | None:
    """Where a member's bytes start: after its local header, name and extra field; None
    when the header is not where the central directory says."""
    if info.header_offset < 0:
        return None
    raw.seek(info.header_offset)
    header = raw.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    offset: int = info.header_offset + 30 + name_length + extra_length
    return offset


def _canonical_order(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's members in the order `write_bundle` writes them: `LEADING`, the
    snapshots and the items in the manifest's order, the manifest and its signature; any
    other member after them. Without a readable manifest, the order they are in (its
    absence fails the check anyway)."""
    infos = archive.infolist()
    try:
        manifest = json.loads(archive.read("manifest.json"))
        listed = [m["path"] for m in manifest.get("snapshots", [])]
        listed += [m["path"] for m in manifest["items"]]
        rank = {name: i for i, name in enumerate([*LEADING, *listed, *SIGNED])}
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        KeyError,
        TypeError,
        AttributeError,
        RuntimeError,
        NotImplementedError,
    ):
        return infos
    return sorted(infos, key=lambda info: rank.get(info.filename, len(rank)))


def verify_bundle(path: Path, *, pubkey: bytes | None = None) -> Verdict:
    """Verify a bundle file offline; `pubkey` (PEM or 64 hex digits) is the key it must be
    signed with — without it, the key inside the bundle is used and a note says so."""
    verdict = Verdict()
    try:
        archive = zipfile.ZipFile(path)
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        KeyError,
        NotImplementedError,
    ) as exc:
        # A damaged header can make zipfile raise more than BadZipFile (a name that is not
        # UTF-8, a bad struct, a version field it does not know): all mean the same here.
        verdict.problems.append(f"{path}: not a readable zip file ({exc})")
        return verdict
    with archive, path.open("rb") as original:
        members = _check_order(verdict, path, archive)
        comparer = _Comparer(original)
        contents, hashes = _read_members(verdict, path, members, comparer)
        rest = original.read(1)
        check_contents(verdict, contents, hashes, pubkey)
        if verdict.ok and (comparer.first_difference is not None or rest):
            at = comparer.first_difference
            verdict.problems.append(
                f"{path.name}: the zip's own structure differs from the canonical layout at "
                f"byte {at if at is not None else comparer.pos} (outside the files' contents: "
                "a header, a timestamp or trailing bytes)"
            )
    return verdict


def _check_order(verdict: Verdict, path: Path, archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The members in the canonical order; a problem for each name found twice, and one
    when the members are in another order."""
    names = [i.filename for i in archive.infolist()]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        verdict.problems.append(f"{dup}: appears more than once in the zip")
    members = _canonical_order(archive)
    for found, expected in zip(names, (i.filename for i in members), strict=True):
        if found != expected:
            verdict.problems.append(
                f"{path.name}: the members are not in the canonical order ({found} where "
                f"{expected} belongs)"
            )
            break
    return members


def _read_members(
    verdict: Verdict, path: Path, members: list[zipfile.ZipInfo], comparer: _Comparer
) -> tuple[dict[str, bytes], dict[str, str]]:
    """One pass over the members: read each one's bytes straight from the file, hash them,
    and write them again in the canonical layout into `comparer`, which compares with the
    original file's bytes (so headers, sizes and CRCs are checked too). Answers the contents
    of the small members and every member's SHA-256."""
    contents: dict[str, bytes] = {}
    hashes: dict[str, str] = {}
    with (
        path.open("rb") as raw,
        zipfile.ZipFile(Stream(comparer.write), "w") as again,
        ThreadPoolExecutor(1, thread_name_prefix="bundle-sha256") as hasher,
    ):
        for info in members:
            data_at = _data_offset(raw, info)
            if data_at is None:
                verdict.problems.append(f"{info.filename}: damaged in the zip (bad header)")
                continue
            raw.seek(data_at)
            digest = hashlib.sha256()
            large = info.filename.startswith(("items/", "snapshots/"))
            kept = None if large else bytearray()
            left = info.compress_size
            try:
                with again.open(member_info(info.filename, left), "w") as copy:
                    while left > 0 and (chunk := raw.read(min(CHUNK, left))):
                        left -= len(chunk)
                        # SHA-256 in a second thread while this one does the CRC-32
                        # and the comparison: both release the GIL on large buffers.
                        hashing = hasher.submit(digest.update, chunk)
                        copy.write(chunk)
                        hashing.result()
                        verdict.bytes += len(chunk)
                        if kept is not None:
                            kept += chunk
                    if left:
                        raise EOFError("the file ends inside this member")
            except (OSError, EOFError, RuntimeError, ValueError) as exc:
                verdict.problems.append(f"{info.filename}: damaged in the zip ({exc})")
                continue
            hashes[info.filename] = digest.hexdigest()
            if kept is not None:
                contents[info.filename] = bytes(kept)
    return contents, hashes
