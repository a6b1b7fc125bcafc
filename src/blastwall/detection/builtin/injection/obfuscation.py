"""Undoing the obfuscation that an obfuscation rule of the pack found, before the text is
scanned once more: tag characters, invisible and bidi characters, homoglyphs, base64 and hex
blobs, leetspeak, ROT13."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Collection

DECODERS = frozenset({"tags", "invisible", "homoglyphs", "blobs", "leet", "rot13"})
"""What `deobfuscate` can undo; an obfuscation rule's `decode` names those its match calls for."""

_HOMOGLYPHS = dict(
    zip(
        "аеорсухіјѕԁһԛԝкмтнвАВЕКМНОРСТХУІЈЅαβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
        "aeopcyxijsdhqwkmthbABEKMHOPCTXYIJSabeiknoptuxABEZHIKMNOPTYX",
        strict=True,
    )
)
_HOMOGLYPH_TABLE = {ord(k): ord(v) for k, v in _HOMOGLYPHS.items()}
_INVISIBLE_TABLE: dict[int, None] = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u180e"
        "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    )
)
_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")
_RIGHT_TO_LEFT = re.compile("\u202e([^\u202a-\u202e\u2066-\u2069\n]*)")
_BLOB = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}|(?:\\x[0-9a-fA-F]{2}){8,}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_LEET = str.maketrans("0134578@$", "oieastbas")
_LEET_WORD = re.compile(r"[A-Za-z]*[0-9@$][A-Za-z0-9@$]*")
_ROT13 = re.compile(r"\brot[\s-]?13\b", re.IGNORECASE)


def _printable(data: bytes) -> str | None:
    """The bytes as text when they read as text (a decoded blob worth scanning), else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    # "\n" and "\t" are not printable: counted on their own
    readable = len(text) if text.isprintable() else sum(map(str.isprintable, text))
    readable += text.count("\n") + text.count("\t")
    letters = sum(map(str.isalpha, text)) + text.count(" ")
    if readable < 0.95 * len(text) or letters < 0.6 * len(text):
        return None
    return text


def _decode_blob(match: re.Match[str]) -> str:
    blob = match.group(0)
    if blob.startswith("\\x"):
        data: bytes | None = bytes.fromhex(blob.replace("\\x", ""))
    elif _HEX.fullmatch(blob):
        data = bytes.fromhex(blob)
    else:
        try:
            data = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            data = None
    text = _printable(data) if data else None
    return f" {text} " if text else blob


def _unleet(match: re.Match[str]) -> str:
    word = match.group(0)
    return word.translate(_LEET) if any(c.isalpha() for c in word) else word


def deobfuscate(text: str, decoders: Collection[str] = DECODERS) -> str:
    """The text with its obfuscation undone, for a second scan, by these decoders: `tags`
    reads Unicode tag characters as the ASCII they hide; `invisible` reads the text after a
    right-to-left override in the order it is shown and drops invisible and bidi characters;
    `homoglyphs` reads Cyrillic and Greek look-alikes as Latin letters; `blobs` decodes
    base64 and hex blobs that decode to text; `leet` reads digits inside words as letters;
    `rot13` adds the text's ROT13 reading where it speaks of ROT13."""
    rot13 = "rot13" in decoders and _ROT13.search(text) is not None
    if "tags" in decoders:
        text = _TAG_RUN.sub(
            lambda m: (
                " "
                + "".join(chr(ord(c) - 0xE0000) for c in m.group(0) if 0xE0020 <= ord(c) < 0xE007F)
                + " "
            ),
            text,
        )
    if "invisible" in decoders:
        text = _RIGHT_TO_LEFT.sub(lambda m: m.group(1)[::-1], text).translate(_INVISIBLE_TABLE)
    if "homoglyphs" in decoders:
        text = text.translate(_HOMOGLYPH_TABLE)
    if "blobs" in decoders:
        text = _BLOB.sub(_decode_blob, text)
    if "leet" in decoders:
        text = _LEET_WORD.sub(_unleet, text)
    if rot13:
        text += "\n" + codecs.encode(text, "rot13")
    return text
