"""Every plugin hook of Blastwall, declared once.

A plugin is a module or object with functions marked `@hookimpl` and named after a hook
below; it is found through the `blastwall` entry-point group (see `blastwall.plugins`). The
built-in detectors are registered the same way, so a plugin can add to them or replace them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from blastwall.detection.base import Detector

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "blastwall"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def blastwall_detectors() -> list[type[Detector]]:  # type: ignore[empty-body]
    """Detector classes to run over interactions (see `blastwall.detection.base.Detector`)."""
