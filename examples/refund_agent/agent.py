"""A small refund agent that obeys Blastwall's controls through the guard.

A scripted model turns each customer request into tool calls: "refund ORDER AMOUNT" looks
the order up, issues the refund and e-mails the customer; "status ORDER" looks it up. The
agent reads one request per line on stdin and answers one JSON line per request on stdout:

    python examples/refund_agent/agent.py --url http://127.0.0.1:8000 --token TOKEN
    refund A-100 20
    {"request": "refund A-100 20", "ok": true, "steps": [...], "revision": 3}

The line `revision` answers the revision of the control state the guard enforces.

`--telemetry` sends an OpenTelemetry span for every tool call (`execute_tool`, with its
arguments and, when the guard stopped it, `error.type`) to the same Blastwall, so that
containment is verified against what the agent really did. `--no-guard` runs the tools
without the guard: an application where the guard is not deployed, whose refunds Blastwall
can only see in the telemetry (and report as a containment breach).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

from blastwall_guard import Guard, GuardError

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


class Telemetry:
    """One `execute_tool` span per tool call, exported to Blastwall over OTLP/HTTP (needs
    the OpenTelemetry SDK and its OTLP exporter); without `url`, nothing is sent."""

    def __init__(self, url: str | None, token: str, system: str) -> None:
        self.tracer: Any = None
        if url is None:
            return
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self.provider = TracerProvider(resource=Resource.create({"service.name": system}))
        exporter = OTLPSpanExporter(
            endpoint=f"{url.rstrip('/')}/v1/traces", headers={"Authorization": f"Bearer {token}"}
        )
        self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("refund-agent-example")

    @contextlib.contextmanager
    def tool(self, name: str, args: dict[str, Any], conversation: str) -> Iterator[None]:
        if self.tracer is None:
            yield
            return
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.arguments": json.dumps(args),
            "gen_ai.conversation.id": conversation,
        }
        with self.tracer.start_as_current_span(
            f"execute_tool {name}", attributes=attributes, record_exception=False
        ) as span:
            try:
                yield
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                raise

    def close(self) -> None:
        if self.tracer is not None:
            self.provider.shutdown()


def build_tools(guard: Guard | None) -> dict[str, Any]:
    issued: list[dict[str, Any]] = []

    def guarded(function: Callable[..., Any]) -> Callable[..., Any]:
        return guard.tool()(function) if guard is not None else function

    @guarded
    def lookup_order(*, order: str) -> dict[str, Any]:
        if order not in ORDERS:
            raise KeyError(f"no order {order}")
        return {"order": order, "total": ORDERS[order]}

    @guarded
    def issue_refund(*, order: str, amount: int) -> dict[str, Any]:
        issued.append({"order": order, "amount": amount})
        return {"refund": len(issued), "order": order, "amount": amount}

    @guarded
    def send_email(*, order: str, text: str) -> dict[str, Any]:
        return {"sent": True, "order": order}

    return {f.__name__: f for f in (lookup_order, issue_refund, send_email)}


def handle(
    guard: Guard | None,
    model: ScriptedModel,
    tools: dict[str, Any],
    request: str,
    telemetry: Telemetry | None = None,
    conversation: str = "example",
) -> dict[str, Any]:
    answer: dict[str, Any] = {"request": request, "ok": True, "steps": []}
    telemetry = telemetry or Telemetry(None, "", "")
    try:
        if guard is not None:
            guard.check_call()
            guard.screen_input(request)
        for name, args in model.plan(request):
            with telemetry.tool(name, args, conversation):
                answer["steps"].append({"tool": name, "result": tools[name](**args)})
        if guard is not None:
            guard.release_output(json.dumps(answer["steps"]))
    except GuardError as exc:
        answer.update(ok=False, blocked=type(exc).__name__, reason=str(exc))
    except (KeyError, ValueError) as exc:
        answer.update(ok=False, error=str(exc))
    answer["revision"] = guard.revision if guard is not None else None
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--system", default="refund-bot")
    parser.add_argument("--fail-mode", choices=["closed", "open"], default="closed")
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="Send a span per tool call to Blastwall (OpenTelemetry SDK).",
    )
    parser.add_argument(
        "--telemetry-token", help="Token (role responder or admin) for /v1/traces; default --token."
    )
    parser.add_argument(
        "--no-guard", action="store_true", help="Run the tools without the guard (not deployed)."
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    telemetry = Telemetry(
        args.url if args.telemetry else None, args.telemetry_token or args.token, args.system
    )
    with contextlib.ExitStack() as stack:
        guard = None
        if not args.no_guard:
            guard = stack.enter_context(Guard(args.system, args.url, args.token, args.fail_mode))
            if not guard.wait_ready(10):
                print(f"no control state from {args.url} within 10 s", file=sys.stderr)
        stack.callback(telemetry.close)
        model, tools = ScriptedModel(), build_tools(guard)
        for n, line in enumerate(sys.stdin):
            request = line.strip()
            if not request:
                continue
            if request == "revision":
                answer: dict[str, Any] = {"revision": guard.revision if guard else None}
            else:
                answer = handle(guard, model, tools, request, telemetry, f"conversation-{n}")
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
