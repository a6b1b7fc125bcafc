"""Evidence bundles: writing one, and verifying one offline.

This module needs neither the server nor the database. A bundle is a zip file, written in
one canonical layout (members stored uncompressed, in a fixed order, with fixed timestamps
and attributes, streamed with data descriptors), holding:

    README.md           how to verify by hand
    SHA256SUMS          `sha256sum -c` input for every file below but the manifest
    pubkey.pem          the signing public key (compare it with `blastwall evidence pubkey`)
    checkpoint.json     the signed ledger checkpoint (exact signed bytes)
    checkpoint.sig      its raw 64-byte Ed25519 signature
    timeline.json       every entry of the incident's timeline, with its author and time
    snapshots/<id>-...  each containment snapshot: the canonical JSON whose SHA-256 was
                        recorded when it was taken, before a containment change
    items/<id>-<name>   the evidence items, byte for byte as collected
    manifest.json       incident, items, snapshots, the sha256 of every file, the ledger
    manifest.sig        raw Ed25519 signature of manifest.json

`verify_bundle` checks the signatures, every file's hash, the ledger segment's chain up to
the signed checkpoint, each item against its collection record, each snapshot against the
hash recorded when it was taken (and on the timeline) — and, by writing the same members
again in the canonical layout, in the canonical order (the order above; snapshots and items
in the manifest's order), and comparing, every byte of the zip outside them.
"""

from blastwall.evidence.bundle.checks import Verdict
from blastwall.evidence.bundle.layout import FORMAT, TIMELINE
from blastwall.evidence.bundle.verify import verify_bundle
from blastwall.evidence.bundle.write import BundleItem, BundleSnapshot, write_bundle

__all__ = [
    "FORMAT",
    "TIMELINE",
    "BundleItem",
    "BundleSnapshot",
    "Verdict",
    "verify_bundle",
    "write_bundle",
]
