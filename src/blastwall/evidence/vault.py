"""The content-addressed store behind the evidence vault.

`BlobStore` is the interface: bytes in, their SHA-256 out, the same bytes back. `FileStore`
keeps each blob in a file named by its hash under the data directory
(``vault/sha256/ab/cd/abcd…``), written to a temporary file first and renamed into place,
so a blob is either whole or absent. An object store (S3, GCS) can implement the same four
methods with the hash as the object key.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from blastwall.errors import BlobMissing

__all__ = ["BlobMissing", "BlobStore", "FileStore", "sha256_hex"]

_HEX = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 20


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    """Where evidence bytes live, addressed by their SHA-256 (lowercase hex)."""

    def put(self, data: bytes) -> str:
        """Store `data` (a no-op when present) and return its SHA-256."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes whose SHA-256 is `digest`, checked; BlobMissing otherwise."""
        ...

    def exists(self, digest: str) -> bool: ...

    def delete(self, digest: str) -> bool:
        """Remove a blob; False when there was none."""
        ...


class FileStore:
    """Blobs as files under `root`, two levels of directories by hash prefix."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if not _HEX.fullmatch(digest):
            raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
        return self.root / "sha256" / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o440)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"the vault has no blob {digest}") from None
        if sha256_hex(data) != digest:
            raise BlobMissing(f"the vault's blob {digest} no longer matches its hash")
        return data

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def digests(self) -> Iterator[str]:
        """Every stored blob's hash (for audits of the store itself)."""
        base = self.root / "sha256"
        if base.is_dir():
            for path in base.glob("*/*/*"):
                if _HEX.fullmatch(path.name):
                    yield path.name
