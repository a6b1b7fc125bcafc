"""Every plugin hook of Blastwall, declared once.

A plugin is a module or object with functions marked `@hookimpl` and named after a hook
below; it is found through the `blastwall` entry-point group (see `blastwall.plugins`). The
built-in detectors, containment connector and notifiers are registered the same way, so a plugin can
add to them or replace them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from blastwall.detection.base import Detector
    from blastwall.plugins import ContainmentConnector, Notifier

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "blastwall"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def blastwall_detectors() -> list[type[Detector]]:  # type: ignore[empty-body]
    """Detector classes to run over interactions (see `blastwall.detection.base.Detector`)."""


@hookspec
def blastwall_containment_connectors() -> list[ContainmentConnector]:  # type: ignore[empty-body]
    """Connectors that carry containment actions out (`blastwall.plugins.ContainmentConnector`)."""


@hookspec
def blastwall_notifiers() -> list[Notifier]:  # type: ignore[empty-body]
    """Notifiers that deliver messages to a kind of channel (`blastwall.plugins.Notifier`)."""
