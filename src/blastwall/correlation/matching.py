"""What a signal is, for correlation: its fingerprint, the component it points at, the
noise rules it matches. Pure functions over a signal and the policy."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from blastwall.correlation.models import NoiseRule
from blastwall.correlation.policy import Policy
from blastwall.signals.models import Signal


def system_of(signal: Signal) -> str | None:
    """The system a signal is about: its inventory id, else the name it was sent with."""
    return signal.system_id or signal.system_ref


def _attribute(attributes: dict[str, Any], path: str) -> Any:
    value: Any = attributes
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def field_value(signal: Signal, name: str) -> str:
    if name == "system":
        value: Any = system_of(signal)
    elif name.startswith("attributes."):
        value = _attribute(signal.attributes or {}, name.removeprefix("attributes."))
    else:
        value = getattr(signal, name)
    return "" if value is None else str(value)


def fingerprint(policy: Policy, signal: Signal) -> str:
    """The signal's fingerprint from the fields the policy declares for its source: the
    source, then a digest of the values, so that a fingerprint says where it comes from.
    A signal that has none of the declared fields but its source takes the default ones."""
    names = policy.fingerprint_fields(signal.source)
    values = [(n, field_value(signal, n)) for n in names]
    if not any(v for n, v in values if n != "source"):
        # e.g. a generic signal that calls its source "detector" but has no fingerprint
        values = [(n, field_value(signal, n)) for n in policy.fingerprints["default"]]
    joined = "\x1f".join(f"{n}={v}" for n, v in values)
    digest = hashlib.sha256(joined.encode()).hexdigest()[:32]
    return f"{signal.source[:100]}:{digest}"


def _matches(kind: str, key: str, value: str) -> bool:
    value = value.strip().lower()
    key = key.lower()
    if kind == "model":  # provider/name@version: the name, or name@version, will do
        name_version = key.split("/", 1)[-1]
        return value in (key, name_version, name_version.split("@", 1)[0])
    return value == key


def named_component(
    policy: Policy, signal: Signal, declared: Iterable[tuple[str, str]]
) -> tuple[str, str] | None:
    """The component (kind, key) the signal names in its attributes, among those its system
    declares; None when it names none of them."""
    declared = list(declared)
    attributes = signal.attributes or {}
    for kind, paths in policy.grouping.component_attributes.items():
        for path in paths:
            value = _attribute(attributes, path)
            if not isinstance(value, str) or not value.strip():
                continue
            for declared_kind, key in declared:
                if declared_kind == kind and _matches(kind, key, value):
                    return kind, key
    return None


def holding_rule(rules: Iterable[NoiseRule], signal: Signal, fingerprint: str) -> str | None:
    """The first noise rule in force that holds the signal back, as `kind:id`."""
    for rule in rules:
        if rule.kind == "maintenance":
            if signal.system_id is not None and rule.system_id == signal.system_id:
                return f"maintenance:{rule.id}"
            continue
        if rule.match and all(
            _rule_matches(signal, name, value, fingerprint) for name, value in rule.match.items()
        ):
            return f"snooze:{rule.id}"
    return None


def _rule_matches(signal: Signal, name: str, value: str, fingerprint: str) -> bool:
    """`fingerprint` matches the correlation fingerprint or the sender's own."""
    if name == "fingerprint":
        return value in (fingerprint, signal.fingerprint)
    if name == "system":
        return value in (signal.system_id, signal.system_ref)
    return str(getattr(signal, name, None)) == value
