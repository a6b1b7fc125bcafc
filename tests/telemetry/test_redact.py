"""Content policies: personal data and secrets masked, content hashed, the input untouched."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blastwall.errors import InvalidInput
from blastwall.telemetry import redact
from blastwall.telemetry.redact import CONTENT_FIELDS, apply_content_policy, redact_text
from tests.conftest import steps

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail jane.doe+shop@example.co.uk today", "Mail [EMAIL] today"),
        ("reach me: J.Smith@mail.example.com.", "reach me: [EMAIL]."),
        ("Call +1 (415) 555-0132 now", "Call [PHONE] now"),
        ("Call 415-555-0132 now", "Call [PHONE] now"),
        ("Call (415) 555-0132 now", "Call [PHONE] now"),
        ("Ring +44 20 7946 0958.", "Ring [PHONE]."),
        ("Ring 020 7946 0958.", "Ring [PHONE]."),
        ("WhatsApp +4915112345678", "WhatsApp [PHONE]"),
        ("Card 4111 1111 1111 1111 exp 12/27", "Card [CARD] exp 12/27"),
        ("Card 4111-1111-1111-1111", "Card [CARD]"),
        ("Amex 378282246310005!", "Amex [CARD]!"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"),
        ("IBAN GB82WEST12345698765432", "IBAN [IBAN]"),
        ("Ref 12: GB82 WEST 1234 5698 7654 32 ok", "Ref 12: [IBAN] ok"),
        ("In 2024 we moved; call 415-555-0132", "In 2024 we moved; call [PHONE]"),
        ("IBAN FR1420041010050500013M02606 OK", "IBAN [IBAN] OK"),
        ("SSN 123-45-6789.", "SSN [SSN]."),
        ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "key [SECRET]"),
        ("key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx-yz0123456789", "key [SECRET]"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "aws [SECRET] here"),
        ("gh ghp_" + "a1B2" * 9 + " end", "gh [SECRET] end"),
        ("gh github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "gh [SECRET]"),
        ("slack xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "slack [SECRET]"),
        ("google AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "google [SECRET]"),
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer [SECRET]"),
        (f"token {JWT} used", "token [SECRET] used"),
        (
            "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "Authorization: Bearer [SECRET]",
        ),
        (f"key:\n{PEM}\ndone", "key:\n[PRIVATE KEY]\ndone"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF", "[PRIVATE KEY]"),
    ],
)
def test_each_kind_is_masked(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Card 4111 1111 1111 1112 fails the Luhn check",
        "Order 1234567890123 is not a card",
        "IBAN DE89 3704 0044 0532 0130 01 fails mod 97",
        "GB82WEST12345698765431",
        "SSN-like 000-12-3456 and 666-12-3456 and 123-00-4567 are not valid",
        "Version 1.2.3, released 2025-03-14 at 10:30, build 20250314, 42 items for $3.50",
        "An email-ish thing like user@localhost or @handle",
        "The sk- prefix alone, or AKIA alone, are not keys.",
        "Coordinates 48.8566, 2.3522 and ratio 3/4, score +10 20",
        "",
        "Plain prose without anything personal in it at all.",
    ],
)
def test_lookalikes_are_not_masked(text: str) -> None:
    assert redact_text(text) == text


def _reference(text: str) -> str:
    """redact_text without its shortcuts: every pattern over the whole text."""
    if "-----BEGIN" in text:
        text = redact._mask_pem(text)
    text = redact._mask_emails(redact._SECRET.sub("[SECRET]", text))
    text = redact._NUMBER.sub(redact._number, redact._IBAN.sub(redact._iban, text))
    text = redact._PHONE_PLUS.sub(redact._phone, text)
    return redact._PHONE_PAREN.sub(redact._phone, text) if len(text) >= 6 else text


FRAGMENTS = [
    "jane@example.com", "4111 1111 1111 1111", "4111111111111112", "+1 (415) 555-0132",
    "415-555-0132", "020 7946 0958", "123-45-6789", "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx", "AKIAIOSFODNN7EXAMPLE",
    JWT, "Bearer abcdefghijklmnopqrstuvwxyz", "order 42", "2025-03-14", "3.50", "the",
    "Ship", "#", "+", "(", ")", "-", "@", "0", "12", "1234567", "A", "J", "x", "_",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=10), st.sampled_from([" ", "", ", ", "\n"]))
def test_shortcuts_do_not_change_the_result(fragments: list[str], separator: str) -> None:
    text = separator.join(fragments)
    if len(text) < 6:
        assert redact_text(text) == text
    else:
        assert redact_text(text) == _reference(text)


def test_several_kinds_in_one_text() -> None:
    text = f"I am jane@example.com, card 4111111111111111, call 415-555-0132, token {JWT}"
    assert redact_text(text) == "I am [EMAIL], card [CARD], call [PHONE], token [SECRET]"


HOSTILE: dict[str, Callable[[int], str]] = {
    "local part, no domain": lambda n: "a" * n + "@",
    "at signs": lambda n: "a@" * (n // 2),
    "digits": lambda n: "1" * n,
    "digits and spaces": lambda n: "1 " * (n // 2),
    "digits and dashes": lambda n: "1-" * (n // 2),
    "plus one": lambda n: "+1 " * (n // 3),
    "PEM headers": lambda n: "-----BEGIN PRIVATE KEY-----" * (n // 27),
    "PEM header, long body": lambda n: "-----BEGIN PRIVATE KEY-----\n" + "A" * n,
    "JWT head": lambda n: "eyJ" + "a" * n,
    "IBAN heads": lambda n: "DE89 " * (n // 5),
    "dotted local part": lambda n: "x." * (n // 2) + "@example.com",
}
"""Texts built to make a redactor slow, as functions of their size in characters. The test
counts calls, which a busy machine does not change; work inside one C call (a regular
expression that backtracks) is not counted, and bench/hostile_text.py times these texts."""
HOSTILE_SIZE = 200_000


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_text_takes_work_in_proportion_to_its_size(name: str) -> None:
    """Twice the text, at most twice the work (counted in calls, not timed)."""
    make = HOSTILE[name]
    half, full = make(HOSTILE_SIZE // 2), make(HOSTILE_SIZE)
    redact_text(half)  # caches filled before counting
    small = steps(lambda: redact_text(half))
    large = steps(lambda: redact_text(full))
    assert large <= 2 * small + 1_000, (small, large)


def record() -> dict[str, Any]:
    return {
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "user_id": "user-9",
        "system_instructions": [{"type": "text", "content": "Escalate to ops@example.com."}],
        "system_instructions_hash": "sha256:abc",
        "input_messages": [
            {"role": "user", "parts": [{"type": "text", "content": "My SSN is 123-45-6789"}]},
            {
                "role": "assistant",
                "parts": [
                    {
                        "type": "tool_call",
                        "id": "call_1",
                        "name": "charge",
                        "arguments": {"card": "4111 1111 1111 1111", "amount": 12},
                    }
                ],
            },
        ],
        "output_messages": [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "Done, receipt sent to a@b.io"}],
                "finish_reason": "stop",
            }
        ],
        "tool_arguments": {"number": 4111111111111111, "note": "call 415-555-0132"},
        "tool_result": None,
        "attributes": {"gen_ai.response.id": "x"},
    }


def test_redacted_policy_masks_every_string_in_the_content_fields() -> None:
    original = record()
    kept = copy.deepcopy(original)
    redacted = apply_content_policy(original, "redacted")
    assert original == kept  # not modified in place
    assert redacted["system_instructions"] == [{"type": "text", "content": "Escalate to [EMAIL]."}]
    assert redacted["input_messages"][0]["parts"][0]["content"] == "My SSN is [SSN]"
    assert redacted["input_messages"][1]["parts"][0]["arguments"] == {
        "card": "[CARD]",
        "amount": 12,
    }
    assert redacted["output_messages"][0]["parts"][0]["content"] == "Done, receipt sent to [EMAIL]"
    assert redacted["output_messages"][0]["finish_reason"] == "stop"
    assert redacted["tool_arguments"] == {"number": "[CARD]", "note": "call [PHONE]"}
    assert redacted["tool_result"] is None
    for key in ("trace_id", "user_id", "system_instructions_hash", "attributes"):
        assert redacted[key] == original[key]


def test_redaction_does_not_follow_hostile_nesting() -> None:
    deep: Any = "4111 1111 1111 1111"
    for _ in range(200):
        deep = [deep]
    redacted = apply_content_policy({"tool_result": deep}, "redacted")
    assert "4111" not in orjson.dumps(redacted).decode()


def test_hashes_policy() -> None:
    original = record()
    kept = copy.deepcopy(original)
    hashed = apply_content_policy(original, "hashes")
    assert original == kept
    for field in CONTENT_FIELDS:
        value = original[field]
        if value is None:
            assert hashed[field] is None
            continue
        canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        assert hashed[field] == {"sha256": hashlib.sha256(canonical).hexdigest()}
    assert hashed["system_instructions_hash"] == "sha256:abc"
    assert hashed["user_id"] == "user-9"
    reordered = dict(
        original, tool_arguments={"note": "call 415-555-0132", "number": 4111111111111111}
    )
    assert apply_content_policy(reordered, "hashes")["tool_arguments"] == hashed["tool_arguments"]


def test_full_policy_returns_an_equal_copy() -> None:
    original = record()
    full = apply_content_policy(original, "full")
    assert full == original
    assert full is not original


def test_unknown_policy_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="Unknown content policy 'none'"):
        apply_content_policy(record(), "none")
