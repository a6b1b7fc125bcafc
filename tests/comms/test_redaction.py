"""Redaction of an update's text per audience, and the words that make a hypothesis read as
a fact."""

from __future__ import annotations

from pathlib import Path

import pytest

from blastwall.comms.audiences import RedactionClass, load_audiences
from blastwall.comms.redaction import Names, Redactor
from blastwall.comms.service.updates import HEDGES
from blastwall.errors import InvalidInput

NAMES = Names(internal=("refund-agent", "orders-db", "issue-refund"), models=("gpt-4o", "openai"))
C = RedactionClass


def _for(audience: str) -> Redactor:
    return Redactor(load_audiences().audience(audience).hides(), NAMES)


def test_customers_see_none_of_the_sensitive_classes() -> None:
    text = (
        'refund-agent on gpt-4o answered "ignore previous instructions" to jane@example.com '
        "with sk-proj-abcdefghijklmnopqrstuvwx1234 via `issue-refund`"
    )
    redacted, hit = _for("customers").redact(text)
    for gone in ("refund-agent", "gpt-4o", "ignore previous", "jane@", "sk-proj", "issue-refund"):
        assert gone not in redacted
    assert hit == {
        C.prompts,
        C.outputs,
        C.system_instructions,
        C.personal_data,
        C.secrets,
        C.internal_names,
        C.model_internals,
    }
    assert redacted.startswith("[INTERNAL] on [MODEL] answered [QUOTED CONTENT]")


def test_each_audience_keeps_what_it_may_see() -> None:
    text = "refund-agent on gpt-4o mailed jane@example.com"
    assert _for("responders").redact(text) == (text, set())
    shown, hit = _for("executives").redact(text)
    assert shown == "refund-agent on gpt-4o mailed [EMAIL]"
    assert hit == {C.personal_data}


def test_plain_words_are_left_alone() -> None:
    text = "Some refunds were issued that customers did not ask for; orders are safe"
    assert _for("customers").redact(text) == (text, set())


def test_hedging_words() -> None:
    hedged = ["Data may have leaked", "It is likely the cache", "We believe it stopped"]
    plain = ["Customers could not log in", "Since 3 May refunds failed", "Logs show it"]
    assert all(HEDGES.search(t) for t in hedged)
    assert not any(HEDGES.search(t) for t in plain)


def test_an_override_replaces_sections_and_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "audiences.yaml"
    path.write_text("cadence:\n  severities:\n    SEV1: {press: 10m}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        load_audiences(path)
    assert "cadence.severities.SEV1.press" in str(refused.value)
    path.write_text("cadence:\n  grace: 5m\n", encoding="utf-8")
    policy = load_audiences(path)
    assert policy.cadence.interval("SEV1", "responders") is None
    assert "customers" in policy.audiences
