"""An OpenFeature provider that answers flags from a guard's control state, for applications
that already evaluate feature flags (needs `openfeature-sdk`: `pip install
'blastwall-guard[openfeature]'`).

Flags, for the guard's system `<system>`:

    <system>.enabled                      bool   false while suspended or in manual fallback
    <system>.agent.<name>.enabled         bool   false while the system or that agent is suspended
    <system>.tool.<name>.enabled          bool   false while the tool is denied
    <system>.tool.<name>.approval         bool   true while calls of the tool need approval
    <system>.output.quarantined           bool   true while outputs are held for review
    <system>.prompt_version               string the pinned prompt version (default otherwise)
    <system>.model_version                string the pinned model version (default otherwise)
    <system>.rate_limit.per_minute        int    the rate limit in force (default otherwise)

While the guard fails closed every boolean answers its closed value (not enabled, approval
needed, quarantined) with the reason ERROR; other keys answer FLAG_NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from blastwall_guard.client import Guard
from blastwall_guard.state import View

T = TypeVar("T")


class BlastwallProvider(AbstractProvider):
    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self.guard = guard
        guard.add_listener(self._changed)

    def get_metadata(self) -> Metadata:
        return Metadata(name="blastwall")

    def _changed(self, revision: int) -> None:
        self.emit_provider_configuration_changed(
            ProviderEventDetails(message=f"control state revision {revision}")
        )

    def _boolean(self, key: str, view: View) -> bool | None:
        guard, prefix = self.guard, f"{self.guard.system_id}."
        if not key.startswith(prefix):
            return None
        rest = key.removeprefix(prefix)
        closed = view.unavailable is not None
        stopped = closed or bool(view.suspended or view.fallback_control)
        if rest == "enabled":
            return not stopped
        if rest == "output.quarantined":
            return closed or view.quarantine is not None
        parts = rest.split(".")
        if len(parts) == 3 and parts[0] == "agent" and parts[2] == "enabled":
            return not (stopped or parts[1] in view.suspended_agents)
        if len(parts) == 3 and parts[0] == "tool" and parts[2] in ("enabled", "approval"):
            outcome = guard.check_tool(parts[1]).outcome
            return outcome != "deny" if parts[2] == "enabled" else outcome == "approval" or closed
        return None

    def _answer(
        self, key: str, default: T, value: T | None, view: View
    ) -> FlagResolutionDetails[T]:
        if value is None:
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR if view.unavailable else Reason.DEFAULT,
                error_code=ErrorCode.FLAG_NOT_FOUND if not view.unavailable else ErrorCode.GENERAL,
                error_message=view.unavailable or f"Blastwall has no flag {key!r}",
            )
        if view.unavailable:
            return FlagResolutionDetails(
                value=value, reason=Reason.ERROR, error_message=view.unavailable
            )
        reason = Reason.STATIC if self.guard.connected else Reason.STALE
        return FlagResolutionDetails(value=value, reason=reason)

    def _view(self) -> View:
        return self.guard.current()

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        view = self._view()
        return self._answer(flag_key, default_value, self._boolean(flag_key, view), view)

    def _string(self, key: str, default: str, view: View) -> str | None:
        prefix = f"{self.guard.system_id}."
        if view.unavailable:
            return None
        if key == prefix + "prompt_version":
            return next(iter(view.prompt_pins.values()), default)
        if key == prefix + "model_version":
            return next(iter(view.model_pins.values()), default)
        return None

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        view = self._view()
        return self._answer(
            flag_key, default_value, self._string(flag_key, default_value, view), view
        )

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        view = self._view()
        value = None
        if flag_key == f"{self.guard.system_id}.rate_limit.per_minute" and not view.unavailable:
            value = view.per_minute if view.per_minute is not None else default_value
        return self._answer(flag_key, default_value, value, view)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._answer(flag_key, default_value, None, self._view())

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._answer(flag_key, default_value, None, self._view())


__all__ = ["BlastwallProvider"]
