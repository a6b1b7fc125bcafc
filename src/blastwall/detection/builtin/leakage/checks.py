"""The checks of each kind of data: candidate spans in, (start, end, value) out. A
candidate passes when its value has the shape, the check digits and the surroundings of its
kind (see the package's docstring)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator

from blastwall.detection.builtin.leakage.patterns import MAX_SECRET, Hit, Span
from blastwall.telemetry.redact import iban_valid, luhn_valid

_KEY_PREFIX = re.compile(
    r"(?i:bearer )|sk-(?:proj-|svcacct-|admin-|ant-)?|gh[pousr]_|github_pat_|glpat-"
    r"|xox[abposr]-|[sr]k_(?:live|test)_|hf_|SG\.|npm_|pypi-"
)
"""The fixed start of a provider's key, left out when judging whether the rest is random."""
_KEY_MATERIAL = re.compile(rb"[A-Za-z0-9+/=]{32}")
_KEY_LINES = re.compile(rb"[A-Za-z0-9+/=\r\n\\]*")  # "\\n" in JSON-encoded arguments
_DIGIT_RUN = re.compile(rb"[0-9]+")
_FOUR_DIGITS = re.compile(rb"[0-9]{4}")
_NUMBER_MAP = bytes(100 if byte in b"0123456789 -" else 120 for byte in range(256))
"""Digits, spaces and dashes to "d", every other byte to "x"."""
_IBAN_REST = re.compile(rb"(?: ?[A-Z0-9]{4}){1,6}(?: ?[A-Z0-9]{1,4})?")
_PARTS = re.compile(r"[^/_+=-]+")
_WORDS = re.compile(r"[A-Z]?[a-z]{3,}|[A-Z]{4,}(?![a-z])|[0-9]{3,}")

_DIGITS = frozenset(b"0123456789")
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_WORD = _ALNUM | {ord("_")}
_KEY_BODY = _WORD | {ord("-")}
_SEPARATORS = frozenset(b" .-")
_EMAIL_LOCAL = _ALNUM | frozenset(b"._%+-")
_TOKEN = _KEY_BODY | frozenset(b".~+/=")
_PHONE_END = _DIGITS | {ord(")")}
_HEX = frozenset("0123456789abcdefABCDEF-")
_IMAGE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tiff"})


def _strip_end(data: bytes, start: int, end: int, keep: frozenset[int]) -> int:
    """The end of a match without the characters after the value that ended it."""
    while end > start and data[end - 1] not in keep:
        end -= 1
    return end


def _at(data: bytes, index: int) -> int:
    """The byte at `index`, 0 outside the data."""
    return data[index] if 0 <= index < len(data) else 0


def _private_keys(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for start, end in spans:
        material = _KEY_MATERIAL.search(data, end, end + 200)
        if material is None:
            continue  # the header alone
        close = data.find(b"-----END", end, end + 20_000)
        if close >= 0:
            stop = data.find(b"-----", close + 8)
            stop = stop + 5 if stop >= 0 else close + 8
        else:  # cut short: the key material that follows
            lines = _KEY_LINES.match(data, material.end())
            stop = lines.end() if lines else material.end()
        found.append((start, stop, data[start:end].decode("ascii")))
    return found


def _api_keys(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for start, end in spans:
        end = _strip_end(data, start, end, _TOKEN)
        while end > start and data[end - 1] == 46:  # a full stop after the key
            end -= 1
        if _at(data, start - 1) in _KEY_BODY or _at(data, end) in _ALNUM:
            continue
        value = data[start:end].decode("ascii")
        prefix = _KEY_PREFIX.match(value)
        if _looks_random(value[prefix.end() :] if prefix else value, classes=2):
            found.append((start, end, value))
    return found


def _emails(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for at, end in spans:
        end = _strip_end(data, at, end, _ALNUM)
        start = at
        while start > max(0, at - 64) and data[start - 1] in _EMAIL_LOCAL:
            start -= 1
        while start < at and data[start] == 46:  # a local part does not start with "."
            start += 1
        if start == at or _at(data, end) in _KEY_BODY or _at(data, end) == ord("("):
            continue  # no local part; L@D.conj(): a method call
        value = data[start:end].decode("ascii")
        if value.rsplit(".", 1)[-1].lower() not in _IMAGE_SUFFIXES:  # logo@2x.png
            found.append((start, end, value))
    return found


def _ibans(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    covered = 0
    for start, end in sorted(spans):
        if start < covered or _at(data, start - 1) in _ALNUM:
            continue  # inside the previous candidate (hostile "DE89 DE89 …"); inside a word
        rest = _IBAN_REST.match(data, end)
        covered = rest.end() if rest else end
        value = data[start:covered].decode("ascii")
        while True:  # the match may run into a following word in capitals: try shorter
            if iban_valid(value.replace(" ", "")) and _at(data, start + len(value)) not in _ALNUM:
                found.append((start, start + len(value), value))
                break
            cut = value.rfind(" ")
            if cut < 0:
                break
            value = value[:cut]
    return found


def _card_brand(digits: str) -> bool:
    """Whether the number has the prefix and length of a card brand."""
    size = len(digits)
    two, three, four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return size in (13, 16, 19)
    if two in (34, 37):  # American Express
        return size == 15
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return size == 16
    if 300 <= three <= 305 or two in (36, 38, 39):  # Diners Club
        return 14 <= size <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= size <= 19
    return two == 50 or 56 <= two <= 69  # Discover, UnionPay, Maestro


def _cards(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for low, high in _merged([(a, _strip_end(data, a, b, _DIGITS)) for a, b in spans]):
        after = _at(data, high)
        if after in _WORD or (after in b".," and _at(data, high + 1) in _DIGITS):
            continue  # part of a word; a number with decimals
        if _at(data, low - 1) in b".," and _at(data, low - 2) in _DIGITS:
            continue  # the decimals of a number
        head = data[max(0, low - 24) : low].translate(_NUMBER_MAP)
        cut = head.rfind(b"x")
        if (cut < 0 and low >= 24) or _FOUR_DIGITS.search(data, low, high) is None:
            continue  # in a long run of numbers (a table); no group of four digits
        low -= len(head) - cut - 1  # back to where the digits and separators start
        while data[low] not in _DIGITS:
            low += 1
        if _at(data, low - 1) in _WORD or _at(data, low - 1) in b"+-.,":
            continue  # part of a word, of a longer number, of an international phone number
        groups = [match.span() for match in _DIGIT_RUN.finditer(data, low, high)]
        found.extend(_cards_in(data, groups))
    return found


def _merged(spans: list[Span]) -> Iterator[Span]:
    """Overlapping spans as one region each."""
    ordered = sorted(spans)
    low, high = ordered[0]
    for start, end in ordered[1:]:
        if start > high:
            yield low, high
            low = start
        high = max(high, end)
    yield low, high


def _cards_in(data: bytes, groups: list[Span]) -> Iterator[Hit]:
    """Cards among groups of digits: one unbroken number, or a group of four and then
    groups of three to six; the groups next to it have fewer than four digits."""
    sizes = [end - start for start, end in groups]
    count = len(sizes)
    first = 0
    while first < count:
        lasts = [first + 1] if 13 <= sizes[first] <= 19 else []
        if sizes[first] == 4:
            last, total = first + 1, 4
            while (
                last < count
                and 3 <= sizes[last] <= 6
                and total + sizes[last] <= 19
                and groups[last][0] - groups[last - 1][1] == 1  # one separator between
            ):
                total += sizes[last]
                last += 1
                lasts.insert(0, last)
        for last in lasts:  # the longest first
            if (first and sizes[first - 1] >= 4) or (last < count and sizes[last] >= 4):
                continue
            start, end = groups[first][0], groups[last - 1][1]
            value = data[start:end].decode("ascii")
            digits = value.replace(" ", "").replace("-", "")
            if len(digits) >= 13 and _card_brand(digits) and luhn_valid(digits):
                yield start, end, value
                first = last - 1
                break
        first += 1


def _ssns(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for start, end in spans:
        before, after = _at(data, start - 1), _at(data, end)
        if before in _WORD or before in b".-" or after in _WORD:
            continue
        if after in b".-" and _at(data, end + 1) in _DIGITS:
            continue
        value = data[start:end].decode("ascii")
        area, group, serial = value.split("-")
        if area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000":
            found.append((start, end, value))
    return found


def _phones(data: bytes, spans: list[Span]) -> list[Hit]:
    found: list[Hit] = []
    for start, end in spans:
        end = _strip_end(data, start, end, _PHONE_END)
        before = _at(data, start - 1)
        if before in _WORD or before in b"+.-/":
            continue
        value = data[start:end].decode("ascii")
        if value[0] == "+":  # international: at most 15 digits, trailing groups dropped
            while sum(map(str.isdigit, value)) > 15:
                cut = max(value.rfind(" "), value.rfind("-"), value.rfind("."))
                if cut <= 0:
                    break
                value = value[:cut]
            end = start + len(value)
        elif before in _SEPARATORS and _at(data, start - 2) in _DIGITS:
            continue  # the tail of a longer grouped number
        elif value[0] != "(" and value[0] != "0" and not _one_separator(value):
            continue
        after = _at(data, end)
        if after in _WORD or (after in _SEPARATORS and _at(data, end + 1) in _DIGITS):
            continue
        if 7 <= sum(map(str.isdigit, value)) <= 15:
            found.append((start, end, value))
    return found


def _one_separator(value: str) -> bool:
    """415-555-0132, 1 415-555-0132; not 1.602 176 6208 (a constant's digits)."""
    seps = [char for char in value if not char.isdigit()]
    if value[0] == "1" and len(seps) == 3 and seps[0] != ".":
        seps = seps[1:]
    return len(set(seps)) == 1


CHECKS: dict[str, Callable[[bytes, list[Span]], list[Hit]]] = {
    "private_key": _private_keys,
    "api_key": _api_keys,
    "email": _emails,
    "iban": _ibans,
    "card": _cards,
    "ssn": _ssns,
    "phone": _phones,
}


def _looks_random(token: str, *, classes: int) -> bool:
    """At least `classes` of upper case, lower case and digits, eight different characters
    (not a placeholder such as XXXX…) and not only hexadecimal: what a generated key looks
    like and a word, a path or a digest does not."""
    chars = set(token)
    if len(chars) < 8 or chars <= _HEX:
        return False
    lower = not chars.isdisjoint("abcdefghijklmnopqrstuvwxyz")
    upper = not chars.isdisjoint("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return lower + upper + (not chars.isdisjoint("0123456789")) >= classes


def _entropy(token: str) -> float:
    size = len(token)
    return -sum(n / size * math.log2(n / size) for n in Counter(token).values())


def _wordiness(token: str) -> float:
    """The share of the token made of words, numbers and hexadecimal pieces: high for
    identifiers (getUserAccountBalance2024), paths and URLs, low for generated keys."""
    explained = 0
    for part in _PARTS.findall(token):
        word = len(part) >= 3 and part.isalpha()
        word = word and (part.islower() or part.isupper() or part.istitle())
        if word or part.isdigit() or (len(part) >= 7 and set(part) <= _HEX):
            explained += len(part)
        else:
            explained += sum(len(found) for found in _WORDS.findall(part) if len(found) >= 4)
    return explained / len(token)


def secrets(data: bytes, spans: list[Span], entropy_threshold: float) -> list[Hit]:
    """Runs of base64 characters that look random enough to be a secret."""
    found: list[Hit] = []
    for start, stop in spans:
        run = data[start:stop]
        if stop - start > MAX_SECRET or run.islower() or run.isupper() or run.isdigit():
            continue  # encoded data; one case only (words, hexadecimal) or none
        token = run.decode("ascii")
        if data[max(0, start - 7) : start] == b"base64," or _at(data, start - 1) == 46:
            continue  # a data: URL; a host name (46 is ".")
        if _at(data, stop) == 46 and _at(data, stop + 1) in _ALNUM:
            continue  # a file or host name: name.wav, nag.co.uk
        if (
            _looks_random(token, classes=3)
            and _entropy(token) >= entropy_threshold
            and _wordiness(token) < 0.5
        ):
            found.append((start, stop, token))
    return found
