"""The evidence ledger's arithmetic: record hashes, the chain, signed checkpoints, the key.

Nothing here touches the database, so that a bundle can be checked offline with this
module alone (and `cryptography`). The format, in full:

* A record's **body** is canonical JSON: keys sorted, no spaces, ASCII only
  (`json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`).
* ``body_hash = SHA-256(body)`` as lowercase hex.
* ``record_hash = SHA-256(prev_hash + body_hash)``: the SHA-256 of the 128 ASCII characters
  of the two hex digests, the previous record's hash first. The first record's
  ``prev_hash`` is 64 zeros (`GENESIS`).
* A **checkpoint** is canonical JSON ``{"at", "head", "key", "kind", "seq", "v"}`` naming
  the hash of record ``seq``; its Ed25519 signature is over those exact bytes. ``key`` is
  the key's fingerprint: the first 16 hex digits of SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from blastwall.errors import KeyFileError

__all__ = [
    "GENESIS",
    "ChainBreak",
    "KeyFileError",
    "Keypair",
    "LedgerRow",
    "body_hash",
    "canonical",
    "checkpoint_message",
    "fingerprint",
    "load_public_key",
    "make_key",
    "read_key",
    "record_hash",
    "verify_chain",
    "verify_signature",
]

GENESIS = "0" * 64
CHECKPOINT_KIND = "blastwall-ledger-checkpoint"


def canonical(value: Any) -> str:
    """The canonical JSON text of `value` (sorted keys, no spaces, ASCII)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def body_hash(body: str) -> str:
    return hashlib.sha256(body.encode("ascii")).hexdigest()


def record_hash(prev_hash: str, body_digest: str) -> str:
    return hashlib.sha256((prev_hash + body_digest).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class LedgerRow:
    """One record as stored: its place, its link, its body and the two hashes."""

    seq: int
    prev_hash: str
    body: str | None  # None: a record of another incident, shown by its body hash only
    body_hash: str
    record_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "prev_hash": self.prev_hash,
            "body": self.body,
            "body_hash": self.body_hash,
            "record_hash": self.record_hash,
        }


@dataclass(frozen=True)
class ChainBreak:
    """Where a chain stops holding, and why."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.problem}"


def verify_chain(rows: Iterable[LedgerRow], *, start_prev: str | None = None) -> list[ChainBreak]:
    """Every break in a run of consecutive records; empty when each body matches its hash,
    each record hash is recomputed exactly and each record links to the one before.
    `start_prev`: the previous hash the first row must name (GENESIS for a whole ledger);
    None accepts whatever it names (a segment)."""
    problems: list[ChainBreak] = []
    prev_hash = start_prev
    prev_seq: int | None = None
    for row in rows:
        if prev_seq is not None and row.seq != prev_seq + 1:
            problems.append(ChainBreak(row.seq, f"follows record {prev_seq}; a record is missing"))
        if prev_hash is not None and row.prev_hash != prev_hash:
            problems.append(ChainBreak(row.seq, "prev_hash is not the previous record's hash"))
        if row.body is not None:
            try:
                digest = body_hash(row.body)
            except UnicodeEncodeError:
                digest = ""
            if digest != row.body_hash:
                problems.append(ChainBreak(row.seq, "body does not match body_hash"))
        if record_hash(row.prev_hash, row.body_hash) != row.record_hash:
            problems.append(ChainBreak(row.seq, "record_hash does not match prev_hash+body_hash"))
        prev_hash, prev_seq = row.record_hash, row.seq
    return problems


def checkpoint_message(*, seq: int, head: str, at: str, key: str) -> str:
    return canonical(
        {"at": at, "head": head, "key": key, "kind": CHECKPOINT_KIND, "seq": seq, "v": 1}
    )


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


@dataclass(frozen=True)
class Keypair:
    """The installation's Ed25519 signing key."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def public_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def make_key(path: Path) -> tuple[Keypair, bool]:
    """The key at `path`, made (PKCS#8 PEM, mode 0600) when there is none; and whether it
    was made now."""
    if path.exists():
        return read_key(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return Keypair(private), True


def read_key(path: Path) -> Keypair:
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyFileError(f"no signing key at {path}") from None
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a key that is not Ed25519")
    return Keypair(private)


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, or from 32 raw bytes written as 64 hex digits."""
    text = data.strip()
    if len(text) == 64:
        try:
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.decode("ascii")))
        except (ValueError, UnicodeDecodeError):
            pass
    try:
        public = serialization.load_pem_public_key(text)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"not a PEM public key or 64 hex digits: {exc}") from None
    if not isinstance(public, Ed25519PublicKey):
        raise KeyFileError("the public key is not Ed25519")
    return public


def verify_signature(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True
