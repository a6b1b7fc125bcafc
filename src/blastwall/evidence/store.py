"""Where an installation keeps its evidence: the blobs' folder and the signing key's file.

A process edge (a request's dependency, a CLI command, `blastwall.wiring`) makes the `Vault`
from the settings (`Vault.of`) and hands it to every function that reads or writes evidence
bytes or signs the ledger; nothing below reads the settings itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blastwall.errors import BlobMissing, KeyFileError, ServerError, SigningKeyMissing
from blastwall.evidence.ledger import Keypair, read_key
from blastwall.evidence.models import EvidenceItem
from blastwall.evidence.vault import FileStore
from blastwall.settings import Settings

__all__ = ["Vault"]


@dataclass(frozen=True)
class Vault:
    """The blob store and the signing key's file of one installation."""

    blobs: FileStore
    key_path: Path

    @classmethod
    def of(cls, settings: Settings) -> Vault:
        return cls(blobs=FileStore(settings.vault_dir), key_path=settings.signing_key_path)

    def key(self) -> Keypair:
        """The signing key; SigningKeyMissing, saying what to do, when it cannot be read."""
        try:
            return read_key(self.key_path)
        except KeyFileError as exc:
            raise SigningKeyMissing(
                f"The evidence signing key cannot be read ({exc}). An administrator must run "
                "`blastwall init` on the server to make it, or set BLASTWALL_EVIDENCE_KEY_FILE "
                "to the existing key."
            ) from None

    def read(self, item: EvidenceItem) -> bytes:
        """An item's bytes from the blob store, checked against its hash."""
        try:
            return self.blobs.get(item.sha256)
        except BlobMissing as exc:
            raise ServerError(
                f"Evidence item {item.id}: {exc}. The vault at {self.blobs.root} was changed "
                "outside Blastwall; restore it from backup (`blastwall evidence verify-ledger` "
                "checks the ledger, not the vault's files)."
            ) from None
