"""An `openai` client whose chat completions go through a guard (without importing openai):
the call is checked first (suspension, fallback, rate limit), a pinned model version
replaces `model`, the latest user message is screened, and each answer's text is released
through output quarantine. Every other attribute is the client's own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blastwall_guard.client import Guard


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


class _Completions:
    def __init__(self, completions: Any, guard: Guard) -> None:
        self._completions = completions
        self._guard = guard

    def create(self, **kwargs: Any) -> Any:
        plan = self._guard.check_call()
        if plan.model_version:
            kwargs["model"] = plan.model_version
        messages = kwargs.get("messages") or []
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            self._guard.screen_input(_text(users[-1].get("content")))
        response = self._completions.create(**kwargs)
        for choice in getattr(response, "choices", None) or []:
            content = getattr(choice.message, "content", None)
            if content:
                self._guard.release_output(content)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._completions, name)


class _Chat:
    def __init__(self, chat: Any, guard: Guard) -> None:
        self.completions = _Completions(chat.completions, guard)
        self._chat = chat

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chat, name)


class GuardedOpenAI:
    def __init__(self, client: Any, guard: Guard) -> None:
        self.chat = _Chat(client.chat, guard)
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
