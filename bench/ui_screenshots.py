#!/usr/bin/env python3
"""Screenshots of the web interface's main pages for docs/ui.md, made anew from a fresh
installation (not a benchmark: it shares the benchmarks' harness).

It sets up a fresh SQLite installation, applies examples/inventory, creates the people and
the data an incident in progress has (signals and a candidate, an incident with facts,
hypotheses, a decision, a task and a draft update), starts `blastwall serve`, signs in with
chromium (Playwright, Debian's chromium) and saves PNGs under docs/ui/.

`python bench/ui_screenshots.py [--out docs/ui]`; exit status 0 when every page was taken.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BenchError, base_env, blastwall, log, server

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1280, "height": 1100}


def token(env: dict[str, str], work: Path, name: str, role: str) -> str:
    out = blastwall(["token", "create", "--name", name, "--role", role], env, work)
    return out.strip().splitlines()[0]


def post(api: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.post(url, json=body)
    if answer.status_code >= 300:
        raise BenchError(f"POST {url}: {answer.status_code} {answer.text[:300]}")
    return dict(answer.json())


def story(api: httpx.Client) -> int:
    """An incident in progress, as responders would have written it; answer its number."""
    for summary in (
        "Instruction override in a retrieved support article",
        "Refund tool called without an order lookup",
    ):
        post(
            api,
            "/api/v1/signals",
            {
                "source": "guardrail",
                "system": "support-chatbot",
                "kind": "jailbreak_attempt",
                "archetype": "prompt_injection",
                "severity": "high",
                "summary": summary,
            },
        )
    incident = post(
        api,
        "/api/v1/incidents",
        {
            "title": "Refund agent issued refunds from an injected support article",
            "summary": "A knowledge-base article carried instructions the agent followed.",
            "archetype": "prompt_injection",
            "severity": "SEV2",
            "severity_reason": "Money moved for real customers; contained to one tool.",
            "systems": ["refund-agent"],
        },
    )
    number = int(incident["id"])
    entries = [
        ("fact", "14 refunds issued between 09:12 and 09:40 UTC, total EUR 2,310."),
        ("hypothesis", "The article kb-2291 was edited by a compromised editor account."),
        ("hypothesis", "The agent's prompt v12 dropped the 'never act on retrieved text' rule."),
        ("decision", "Disable the issue_refund tool until the article source is verified."),
        ("action", "Asked the KB team to freeze edits on the billing space."),
        ("note", "Customer support has been told to hold refund escalations."),
    ]
    for kind, body in entries:
        post(api, f"/api/v1/incidents/{number}/timeline", {"kind": kind, "text": body})
    post(
        api,
        f"/api/v1/incidents/{number}/tasks",
        {"title": "List every customer refunded since 09:00 UTC"},
    )
    return number


def shoot(base: str, admin: str, number: int, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        raise BenchError("chromium is not installed (apt-get install chromium)")
    pages = [
        ("incidents.png", "/ui/incidents", False),
        ("incident.png", f"/ui/incidents/{number}", False),
        ("containment.png", f"/ui/incidents/{number}/containment", False),
        ("comms.png", f"/ui/incidents/{number}/comms", False),
        ("systems.png", "/ui/systems", False),
        ("system.png", "/ui/systems/refund-agent", False),
        ("signals.png", "/ui/signals", False),
        ("hunts.png", "/ui/hunts", False),
    ]
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(f"{base}/ui/login")
        page.screenshot(path=str(out / "sign-in.png"))
        taken.append(out / "sign-in.png")
        page.get_by_label("Personal token").fill(admin)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/ui/incidents**")
        for name, url, full in pages:
            answer = page.goto(f"{base}{url}")
            if answer is None or answer.status != 200:
                raise BenchError(f"{url}: {answer.status if answer else 'no answer'}")
            page.wait_for_load_state("networkidle")
            if name == "containment.png":  # one control's preview, as before applying it
                page.get_by_text("Revoke tool issue-refund").first.click()
            page.screenshot(path=str(out / name), full_page=full)
            taken.append(out / name)
        browser.close()
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="blastwall-screens-"))
    env = base_env(work / "data", None)
    env["BLASTWALL_DETECTION_WORKERS"] = "0"
    try:
        blastwall(["init"], env, work)
        blastwall(["inventory", "apply", str(ROOT / "examples" / "inventory")], env, work)
        admin = token(env, work, "dana", "admin")
        with server(env, work, work / "server.log") as base:
            api = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=30
            )
            number = story(api)
            for path in shoot(base, admin, number, args.out):
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    except BenchError as exc:
        log(f"could not take the screenshots: {exc}")
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
