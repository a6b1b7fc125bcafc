"""A revoked token loses the control stream it opened: revocation closes it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES
from tests.support.containment_live import WAIT, Installation

pytestmark = pytest.mark.slow


def test_revoking_a_token_closes_its_control_stream(tmp_path: Path) -> None:
    with Installation(tmp_path) as site:
        site.cli("inventory", "apply", str(EXAMPLES))
        secret = site.token("refund-guard", "viewer")
        site.start()
        lines: list[str] = []
        ended = threading.Event()

        def listen() -> None:
            headers = {"Authorization": f"Bearer {secret}"}
            try:
                with httpx.stream(
                    "GET",
                    f"{site.url}/api/v1/controls/stream?system=refund-agent",
                    headers=headers,
                    timeout=httpx.Timeout(5.0, read=WAIT),
                ) as response:
                    for line in response.iter_lines():
                        lines.append(line)
            except httpx.HTTPError as exc:
                lines.append(f"error: {exc!r}")
            ended.set()

        reader = threading.Thread(target=listen, daemon=True)
        reader.start()
        for _ in range(int(WAIT * 10)):
            if any(line.startswith("event: state") for line in lines):
                break
            ended.wait(0.1)
        assert any(line.startswith("event: state") for line in lines)
        assert not ended.is_set()
        listed = json.loads(site.cli("token", "list", "--json"))
        token_id = str(next(t["id"] for t in listed if t["name"] == "refund-guard"))
        site.cli("token", "revoke", token_id)
        assert ended.wait(WAIT), "the stream of a revoked token stayed open"
        assert not any(line.startswith("error:") for line in lines), (
            lines,
            site.log.read_text()[-3000:],
        )
        again = httpx.get(
            f"{site.url}/api/v1/controls?system=refund-agent",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert again.status_code == 401
