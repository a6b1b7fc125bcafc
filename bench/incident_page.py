"""The incident page of the web interface on the busiest incident: checks "a timeline of
1,000 entries is served in p95 <= 150 ms".

A fresh SQLite installation (`blastwall init`, the example inventory, an admin token) and
`blastwall serve`; one incident with `--entries` timeline entries written through the API
(the five kinds in turn, every fifth a hypothesis with a verdict form); a responder signs
in through the sign-in form and loads `/ui/incidents/{id}` `--loads` times, then the
"earlier entries" fragment as many times. Each request is timed on its own, from this
client on the same machine (so the figures include the client's share of the CPU)."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import base_env, blastwall, log, percentile, server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "inventory"
KINDS = ("note", "fact", "hypothesis", "decision", "action")
P95_LIMIT_MS = 150.0
EARLIER = re.compile(r'<li id="earlier".*?hx-get="([^"]+)"', re.S)


def timed(
    client: httpx.Client, url: str, count: int, headers: dict[str, str] | None = None
) -> list[float]:
    """Milliseconds of `count` GETs of `url`, sorted; each must answer 200."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        answer = client.get(url, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"GET {url}: {answer.status_code} {answer.text[:300]}")
    return sorted(times)


def sign_in(client: httpx.Client, token: str) -> None:
    form = client.get("/ui/login").text
    found = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert found, form
    client.post("/ui/login", data={"token": token, "login_csrf": found.group(1)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = base_env(work / "data", None)
        blastwall(["init"], env, work)
        blastwall(["inventory", "apply", str(EXAMPLES)], env, work)
        admin = blastwall(["token", "create", "--name", "bench", "--role", "admin"], env, work)
        responder = blastwall(
            ["token", "create", "--name", "rita", "--role", "responder"], env, work
        )
        with server(env, work, work / "server.log") as base:
            headers = {"Authorization": f"Bearer {admin.splitlines()[0]}"}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
                body = {"title": "Busy", "archetype": "agentic_misalignment", "severity": "SEV1"}
                number = api.post("/api/v1/incidents", json=body).json()["id"]
                log(f"writing {args.entries} entries on incident {number}")
                for n in range(args.entries):
                    entry = {"kind": KINDS[n % len(KINDS)], "text": f"entry {n} " * 8}
                    api.post(f"/api/v1/incidents/{number}/timeline", json=entry)
            with httpx.Client(base_url=base, timeout=30) as browser:
                sign_in(browser, responder.splitlines()[0])
                url = f"/ui/incidents/{number}"
                page = timed(browser, url, args.loads)
                earlier = EARLIER.search(browser.get(url).text)
                assert earlier, "no link to earlier entries"
                fragment = timed(browser, earlier.group(1), args.loads, headers={"HX-Request": "1"})
    for name, times in (("incident page", page), ("earlier entries", fragment)):
        print(
            f"{name:16} p50 {percentile(times, 50):6.1f} ms  p95 {percentile(times, 95):6.1f} ms"
            f"  max {times[-1]:6.1f} ms  ({len(times)} requests)"
        )
    p95 = percentile(page, 95)
    verdict = "PASS" if p95 <= P95_LIMIT_MS else "FAIL"
    print(f"{verdict}: incident page p95 {p95:.1f} ms (limit {P95_LIMIT_MS:g} ms)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
