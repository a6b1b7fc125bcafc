"""A small refund agent that obeys Blastwall's controls through the guard.

A scripted model turns each customer request into tool calls: "refund ORDER AMOUNT" looks
the order up, issues the refund and e-mails the customer; "status ORDER" looks it up. The
agent reads one request per line on stdin and answers one JSON line per request on stdout:

    python examples/refund_agent/agent.py --url http://127.0.0.1:8000 --token TOKEN
    refund A-100 20
    {"request": "refund A-100 20", "ok": true, "steps": [...], "revision": 3}

The line `revision` answers the revision of the control state the guard enforces.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from blastwall.guard import Guard, GuardError

ORDERS = {"A-100": 120, "A-101": 45, "A-102": 300}


class ScriptedModel:
    """Stands in for an LLM: the same request always gives the same tool calls."""

    def plan(self, request: str) -> list[tuple[str, dict[str, Any]]]:
        words = request.split()
        if len(words) == 3 and words[0] == "refund":
            order, amount = words[1], int(words[2])
            return [
                ("lookup_order", {"order": order}),
                ("issue_refund", {"order": order, "amount": amount}),
                ("send_email", {"order": order, "text": f"We refunded {amount} EUR."}),
            ]
        if len(words) == 2 and words[0] == "status":
            return [("lookup_order", {"order": words[1]})]
        raise ValueError(f"the model does not understand {request!r}")


def build_tools(guard: Guard) -> dict[str, Any]:
    issued: list[dict[str, Any]] = []

    @guard.tool()
    def lookup_order(*, order: str) -> dict[str, Any]:
        if order not in ORDERS:
            raise KeyError(f"no order {order}")
        return {"order": order, "total": ORDERS[order]}

    @guard.tool()
    def issue_refund(*, order: str, amount: int) -> dict[str, Any]:
        issued.append({"order": order, "amount": amount})
        return {"refund": len(issued), "order": order, "amount": amount}

    @guard.tool()
    def send_email(*, order: str, text: str) -> dict[str, Any]:
        return {"sent": True, "order": order}

    return {f.__name__: f for f in (lookup_order, issue_refund, send_email)}


def handle(
    guard: Guard, model: ScriptedModel, tools: dict[str, Any], request: str
) -> dict[str, Any]:
    answer: dict[str, Any] = {"request": request, "ok": True, "steps": []}
    try:
        guard.check_call()
        guard.screen_input(request)
        for name, args in model.plan(request):
            answer["steps"].append({"tool": name, "result": tools[name](**args)})
        guard.release_output(json.dumps(answer["steps"]))
    except GuardError as exc:
        answer.update(ok=False, blocked=type(exc).__name__, reason=str(exc))
    except (KeyError, ValueError) as exc:
        answer.update(ok=False, error=str(exc))
    answer["revision"] = guard.revision
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--system", default="refund-bot")
    parser.add_argument("--fail-mode", choices=["closed", "open"], default="closed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    with Guard(args.system, args.url, args.token, args.fail_mode) as guard:
        if not guard.wait_ready(10):
            print(f"no control state from {args.url} within 10 s", file=sys.stderr)
        model, tools = ScriptedModel(), build_tools(guard)
        for line in sys.stdin:
            request = line.strip()
            if not request:
                continue
            if request == "revision":
                answer: dict[str, Any] = {"revision": guard.revision}
            else:
                answer = handle(guard, model, tools, request)
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
