"""Content policies for interaction records: keep content, mask personal data, or hash it.

`apply_content_policy(record, policy)` returns a new record (the input is not touched):

* ``full``: content kept as sent.
* ``redacted``: every string value inside the content fields (object keys are left alone)
  goes through `redact_text`, which masks e-mail addresses, phone numbers, payment cards
  (Luhn-checked), IBANs (mod-97 checked), US social security numbers, common API keys and
  tokens, and PEM private keys. Integers of 13-19 digits that pass the Luhn check become
  ``[CARD]`` too. Structures nested deeper than `MAX_DEPTH` are replaced by ``[REDACTED]``:
  nothing is let through unread.
* ``hashes``: each content field that is present becomes ``{"sha256": hex}`` of its
  canonical JSON (sorted keys, no spaces); `system_instructions_hash` is kept.

The patterns are compiled once; cheap substring checks skip the ones that cannot match.
Every quantifier is bounded so that hostile text cannot make a pattern backtrack for long.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from blastwall.errors import InvalidInput, Problem

__all__ = [
    "CONTENT_FIELDS",
    "MAX_DEPTH",
    "POLICIES",
    "apply_content_policy",
    "iban_valid",
    "luhn_valid",
    "redact_text",
]

CONTENT_FIELDS = (
    "system_instructions",
    "input_messages",
    "output_messages",
    "tool_arguments",
    "tool_result",
)
POLICIES = ("full", "redacted", "hashes")
MAX_DEPTH = 64

_PEM_BEGIN = re.compile(r"-----BEGIN ((?:[A-Z0-9]{1,20} ){0,4})PRIVATE KEY-----")
_PEM_BODY = re.compile(r"(?:\r?\n(?:[A-Za-z0-9+/=]{1,4096}|[A-Za-z-]{1,40}: ?[^\r\n]{0,200})?)*")
_SECRET = re.compile(
    r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,300}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{36,255}\b"
    r"|\bgithub_pat_[A-Za-z0-9_]{22,255}\b"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,250}"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|\beyJ[A-Za-z0-9_-]{5,2000}\.[A-Za-z0-9_-]{5,4000}\.[A-Za-z0-9_-]{0,2000}"
    r"|(?<=[Bb]earer )[A-Za-z0-9._~+/-]{20,2000}=*"
)
# Each pattern starts with a character (class) and checks what precedes it with a lookbehind
# placed after that first character, so that the regex engine can skip ahead to candidates.
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+-]{1,64}\Z")
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b")
_IBAN = re.compile(
    r"[A-Z](?<!\w[A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b", re.ASCII
)
# Cards, US SSNs and phone numbers written without "+" or "(": one scan, told apart by group.
_NUMBER = re.compile(
    r"\d(?:(?<![\d-]\d)\d\d(?<!000)(?<!666)(?<!9\d\d)-(?!00)(?P<ssn>\d\d)-(?!0000)\d{4}(?![\d-])"
    r"|(?<![\w+.-]\d)(?<!\d \d)(?P<phone>\d\d(?P<sep>[ .-])\d{3}(?P=sep)\d{4}"
    r"|(?<=0)\d{2,4}[ -]\d{3,4}[ -]?\d{3,4})(?![\d.-]?\d)"
    r"|(?<![\d+-]\d)(?:[ -]?\d){12,18}(?!\d))",
    re.ASCII,
)
_PHONE_PLUS = re.compile(
    r"\+(?<![\w+]\+)\d{1,3}[ .-]?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]?\d{2,4}){1,4}(?!\d)", re.ASCII
)
_PHONE_PAREN = re.compile(r"\((?<![\w+]\()\d{3}\) ?\d{3}[ .-]\d{4}(?!\d)", re.ASCII)
# Seven digits, a few separators apart: what every phone, card, SSN and IBAN has. Text without
# such a run (most text) skips the patterns below.
_LONG_NUMBER = re.compile(r"[0-9](?:[ ().+/-]{0,3}[0-9]){6}")


def _has_digit(text: str) -> bool:
    return (
        "0" in text or "1" in text or "2" in text or "3" in text or "4" in text
        or "5" in text or "6" in text or "7" in text or "8" in text or "9" in text
    )  # fmt: skip


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _number(match: re.Match[str]) -> str:
    if match.group("ssn") is not None:
        return "[SSN]"
    if match.group("phone") is not None:
        return _phone(match)
    text = match.group()
    digits = text.replace(" ", "").replace("-", "")
    return "[CARD]" if luhn_valid(digits) else text


def iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _iban(match: re.Match[str]) -> str:
    text = match.group()
    candidate = text
    while True:  # the match may run into a following word in capitals: try shorter
        if iban_valid(candidate.replace(" ", "")):
            return "[IBAN]" + text[len(candidate) :]
        cut = candidate.rfind(" ")
        if cut < 0:
            return text
        candidate = candidate[:cut]


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = sum(char.isdigit() for char in text)
    return "[PHONE]" if 7 <= digits <= 15 else text


def _mask_emails(text: str) -> str:
    """E-mail addresses found from their "@": cheaper than a pattern tried at every letter."""
    out: list[str] = []
    position = 0
    at = text.find("@")
    while at >= 0:
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        local = domain and _EMAIL_LOCAL.search(text, max(position, at - 64), at)
        if domain and local:
            out.append(text[position : local.start()])
            out.append("[EMAIL]")
            position = domain.end()
        at = text.find("@", max(at + 1, position))
    out.append(text[position:])
    return "".join(out)


def _mask_pem(text: str) -> str:
    out: list[str] = []
    position = 0
    no_end: set[str] = set()
    while True:
        match = _PEM_BEGIN.search(text, position)
        if match is None:
            break
        out.append(text[position : match.start()])
        label = match.group(1)
        end = -1
        if label not in no_end:
            marker = f"-----END {label}PRIVATE KEY-----"
            end = text.find(marker, match.end())
            if end < 0:
                no_end.add(label)
            else:
                end += len(marker)
        if end < 0:  # a key without its END line (cut short): mask the lines that follow
            body = _PEM_BODY.match(text, match.end())
            end = body.end() if body else match.end()
        out.append("[PRIVATE KEY]")
        position = end
    out.append(text[position:])
    return "".join(out)


def redact_text(text: str) -> str:
    """The text with personal data and secrets replaced by [EMAIL], [PHONE], [CARD],
    [IBAN], [SSN], [SECRET] and [PRIVATE KEY]."""
    if len(text) < 6:  # shorter than the shortest thing masked (a@b.io)
        return text
    if "-----BEGIN" in text:
        text = _mask_pem(text)
    # Searching for one character is much cheaper than for a word: gate the words with one.
    if (
        ("-" in text and ("sk-" in text or "xox" in text))
        or ("_" in text and "gh" in text)
        or ("A" in text and ("AKIA" in text or "ASIA" in text or "AIza" in text))
        or ("J" in text and "eyJ" in text)
        or "earer " in text
    ):
        text = _SECRET.sub("[SECRET]", text)
    if "@" in text:
        text = _mask_emails(text)
    if not _has_digit(text):
        return text
    run = _LONG_NUMBER.search(text)
    if run is None:
        return text
    # Nothing to mask starts before the first run of seven digits, less an IBAN's country
    # code, check digits and bank code ("GB82 WEST ") and what lookbehinds look at: the
    # patterns below scan only the rest.
    cut = max(run.start() - 12, 0)
    head, text = text[:cut], text[cut:]
    text = _NUMBER.sub(_number, _IBAN.sub(_iban, text))
    if "+" in text:
        text = _PHONE_PLUS.sub(_phone, text)
    if "(" in text:
        text = _PHONE_PAREN.sub(_phone, text)
    return head + text


def _redact(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        return redact_text(value)
    if depth >= MAX_DEPTH and (kind is dict or kind is list):
        return "[REDACTED]"
    if kind is dict:
        return {key: _redact(item, depth + 1) for key, item in value.items()}
    if kind is list:
        return [_redact(item, depth + 1) for item in value]
    if kind is int and 10**12 <= abs(value) < 10**19 and luhn_valid(str(abs(value))):
        return "[CARD]"
    return value


def _digest(value: Any) -> dict[str, str]:
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError):  # not JSON (too deep, odd types): hash its repr
        try:
            data = repr(value).encode("utf-8", "surrogatepass")
        except RecursionError:
            data = b"[unrepresentable value]"
    return {"sha256": hashlib.sha256(data).hexdigest()}


def apply_content_policy(record: dict[str, Any], policy: str) -> dict[str, Any]:
    """A copy of the interaction record with its content fields treated per `policy`."""
    out = dict(record)
    if policy == "full":
        return out
    if policy == "redacted":
        for name in CONTENT_FIELDS:
            value = record.get(name)
            if value is not None:
                out[name] = _redact(value, 0)
        return out
    if policy == "hashes":
        for name in CONTENT_FIELDS:
            value = record.get(name)
            if value is not None:
                out[name] = _digest(value)
        return out
    raise InvalidInput(
        f"Unknown content policy '{policy}'. Use one of: {', '.join(POLICIES)}.",
        problems=[Problem("content_policy", f"must be one of {', '.join(POLICIES)}")],
    )
