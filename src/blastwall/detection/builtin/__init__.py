"""The built-in detectors, registered as a plugin like any other (see `blastwall.hookspecs`)."""

from __future__ import annotations

from blastwall.detection.base import Detector
from blastwall.hookspecs import hookimpl

__all__ = ["blastwall_detectors"]


@hookimpl
def blastwall_detectors() -> list[type[Detector]]:
    """The nine built-in detectors."""
    from blastwall.detection.builtin.canary import CanaryDetector
    from blastwall.detection.builtin.drift import DriftDetector
    from blastwall.detection.builtin.guardrail import GuardrailDetector
    from blastwall.detection.builtin.injection import InjectionDetector
    from blastwall.detection.builtin.leakage import LeakageDetector
    from blastwall.detection.builtin.prompt_leak import PromptLeakDetector
    from blastwall.detection.builtin.runaway import RunawayDetector
    from blastwall.detection.builtin.service_levels import ServiceLevelDetector
    from blastwall.detection.builtin.tool_policy import ToolPolicyDetector

    return [
        InjectionDetector,
        LeakageDetector,
        CanaryDetector,
        PromptLeakDetector,
        ToolPolicyDetector,
        RunawayDetector,
        ServiceLevelDetector,
        DriftDetector,
        GuardrailDetector,
    ]
