"""A bundle is checked byte for byte against Blastwall's canonical layout, member order
included (issue 18): the same members, each with canonical headers, in any other order
fail; so does a header field changed with the order kept."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blastwall.db import Database
from blastwall.evidence.bundle import verify_bundle
from blastwall.evidence.bundle.layout import Stream, member_info
from tests.support.bundles import read_members, rezip
from tests.support.evidence import evidence_dir
from tests.support.evidence_state import add_file, export, open_incident

__all__ = ["evidence_dir"]  # a fixture


@pytest.fixture
def bundle(db: Database, evidence_dir: Path) -> bytes:
    """A bundle with three items: the order of items among themselves matters too."""
    with db.transaction() as session:
        incident = open_incident(session, "canonical")
        for n in range(3):
            add_file(session, incident, f"file-{n}.txt", f"file {n}", data=evidence_dir)
        data = export(session, incident, evidence_dir)
    return data


def _problems(tmp_path: Path, data: bytes) -> list[str]:
    path = tmp_path / "bundle.zip"
    path.write_bytes(data)
    return verify_bundle(path).problems


def test_the_canonical_layout_verifies(bundle: bytes, tmp_path: Path) -> None:
    assert rezip(read_members(bundle)) == bundle
    assert _problems(tmp_path, bundle) == []


def test_two_items_swapped_fail(bundle: bytes, tmp_path: Path) -> None:
    members = read_members(bundle)
    items = [i for i, (name, _) in enumerate(members) if name.startswith("items/")]
    first, second = items[0], items[1]
    members[first], members[second] = members[second], members[first]
    problems = _problems(tmp_path, rezip(members))
    assert len(problems) == 1, problems
    assert "the members are not in the canonical order" in problems[0]
    assert f"({members[first][0]} where {members[second][0]} belongs)" in problems[0]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_other_order_fails(bundle: bytes, tmp_path: Path, data: st.DataObject) -> None:
    members = read_members(bundle)
    order = data.draw(st.permutations(range(len(members))))
    if order == sorted(order):
        return
    problems = _problems(tmp_path, rezip([members[i] for i in order]))
    assert any("not in the canonical order" in p for p in problems), problems


def test_a_changed_timestamp_fails(bundle: bytes, tmp_path: Path) -> None:
    """The members in their order, one written with another time: the contents all verify,
    the layout does not."""
    out = io.BytesIO()
    with zipfile.ZipFile(Stream(out.write), "w", zipfile.ZIP_STORED) as archive:
        for name, content in read_members(bundle):
            info = member_info(name, len(content))
            if name == "README.md":
                info.date_time = (2030, 1, 1, 0, 0, 0)
            with archive.open(info, "w") as member:
                member.write(content)
    problems = _problems(tmp_path, out.getvalue())
    assert len(problems) == 1 and "differs from the canonical layout" in problems[0], problems
