"""A small OpenAI-compatible server, for the openai client and its instrumentation."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI


def fake_openai() -> FastAPI:
    """Answers chat completions with a tool call, the way the OpenAI API does."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    def complete(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_9",
                                "type": "function",
                                "function": {
                                    "name": "issue-refund",
                                    "arguments": '{"order": "1182", "amount": 950}',
                                },
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 57, "completion_tokens": 21, "total_tokens": 78},
        }

    return app
