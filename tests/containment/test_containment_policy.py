"""The containment policy file: the default, a custom one, and wrong ones refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from blastwall.auth.roles import Role
from blastwall.containment.policy import load_policy, parse_policy
from blastwall.errors import PolicyError
from blastwall.incidents.schemas import Severity
from blastwall.inventory.schemas import Control


def test_default_policy() -> None:
    policy = load_policy()
    assert policy.preauthorised_for(Role.responder, Control.revoke_tool, Severity.SEV4)
    assert policy.preauthorised_for(Role.responder, Control.suspend, Severity.SEV1)
    assert not policy.preauthorised_for(Role.responder, Control.suspend, Severity.SEV3)
    assert policy.preauthorised_for(Role.commander, Control.manual_fallback, Severity.SEV4)
    assert not policy.preauthorised_for(Role.viewer, Control.rate_limit, Severity.SEV1)
    assert policy.may_approve(Role.commander) and not policy.may_approve(Role.responder)


def test_custom_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("approvers: [admin]\npreauthorised: []\n")
    policy = load_policy(path)
    assert not policy.preauthorised_for(Role.admin, Control.suspend, Severity.SEV1)
    assert not policy.may_approve(Role.commander)


def test_wrong_policies_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"preauthorised\[0\]\.controls"):
        parse_policy(
            "approvers: [commander]\npreauthorised:\n  - roles: [responder]\n"
            "    controls: [shutdown]\n    severities: all\n",
            source="p.yaml",
        )
    with pytest.raises(PolicyError, match=r"p\.yaml is not valid YAML"):
        parse_policy("approvers: [", source="p.yaml")
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "missing.yaml")
