"""The detection engine: runs every enabled detector of a system over its interactions.

One engine lives in a server process (and one in a `blastwall scan` run). For each AI system
it builds the detectors once, from the system's inventory entry and its `detection:` settings,
and keeps them — with the state of the stateful ones — until that entry changes. Stateless
detectors run first; then the stateful ones, which see which stateless ones fired (`Item.hits`).

A detector that raises is logged with its traceback and counted in `failures`; the
interactions are stored and the other detectors still run: losing telemetry because one
detector failed would be worse than the failure itself.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from blastwall.detection.base import (
    EXCERPT_CHARS,
    Detector,
    DetectorConfig,
    Finding,
    Item,
    SystemContext,
)
from blastwall.errors import InvalidInput, PluginError, Problem, field_path
from blastwall.incidents.schemas import Archetype
from blastwall.inventory.schemas import SystemSpec
from blastwall.plugins import plugin_manager
from blastwall.taxonomy import taxonomy
from blastwall.telemetry.redact import redact_text

__all__ = [
    "Detection",
    "DetectionEngine",
    "LiveMapping",
    "detector_classes",
    "redact_excerpt",
    "validate_settings",
]

log = logging.getLogger("blastwall.detection")
SEVERITIES = frozenset(["info", "warning", "high", "critical"])
ARCHETYPES = frozenset([*(a.value for a in Archetype), None])
MAX_RESTS_ON = 50


def detector_classes() -> list[type[Detector]]:
    """Every registered detector class, by id. A plugin's detector with the id of a built-in
    one replaces it (plugins load after the built-ins and are asked first)."""
    found: dict[str, type[Detector]] = {}
    for answer in plugin_manager().hook.blastwall_detectors():
        for cls in answer or []:
            if not (isinstance(cls, type) and issubclass(cls, Detector)):
                raise PluginError(f"blastwall_detectors answered {cls!r}, not a Detector class")
            for attribute in ("id", "version", "description"):
                if not isinstance(getattr(cls, attribute, None), str):
                    raise PluginError(f"detector {cls.__qualname__} has no string '{attribute}'")
            found.setdefault(cls.id, cls)
    return sorted(found.values(), key=lambda cls: cls.id)


def validate_settings(
    settings: Mapping[str, Any], classes: Iterable[type[Detector]] | None = None
) -> dict[str, DetectorConfig]:
    """The `detection:` section of an inventory entry checked against the detectors' configs.
    Raises InvalidInput naming each bad field (e.g. `prompt_injection.threshold`)."""
    by_id = {cls.id: cls for cls in (classes if classes is not None else detector_classes())}
    configs: dict[str, DetectorConfig] = {}
    problems: list[Problem] = []
    for detector_id, values in settings.items():
        cls = by_id.get(detector_id)
        if cls is None:
            problems.append(
                Problem(detector_id, f"no such detector; known: {', '.join(sorted(by_id))}")
            )
            continue
        try:
            configs[detector_id] = cls.Config.model_validate(values or {})
        except ValidationError as exc:
            problems.extend(
                Problem(field_path((detector_id, *e["loc"])), e["msg"]) for e in exc.errors()
            )
    if problems:
        raise InvalidInput("invalid detection settings", problems=problems)
    return configs


class LiveMapping(Mapping[str, str]):
    """A read-only mapping whose contents are swapped whole (canary hashes): detectors keep
    a reference to it and see each new version without being rebuilt."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self.version: Any = None

    def replace(self, data: dict[str, str], version: Any) -> None:
        self._data, self.version = data, version

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(slots=True)
class Detection:
    """A finding of one detector, with what it rests on: what becomes a signal."""

    detector: str
    version: str
    finding: Finding
    items: list[Item]
    system_id: str | None

    @property
    def fingerprint(self) -> str:
        key = self.finding.key or self.finding.kind
        return f"{self.detector}:{self.system_id or '-'}:{key}"[:200]


@dataclass
class _SystemDetectors:
    spec: Any
    stateless: list[Detector]
    stateful: list[Detector]
    allowlists: dict[str, tuple[str, ...]]
    lock: threading.Lock = field(default_factory=threading.Lock)


class DetectionEngine:
    """Detectors per system, built on first use and rebuilt when the system's entry changes."""

    def __init__(self, classes: list[type[Detector]] | None = None) -> None:
        self.classes = classes if classes is not None else detector_classes()
        self.canaries = LiveMapping()
        self.failures: Counter[str] = Counter()
        self._systems: dict[str | None, _SystemDetectors] = {}
        self._lock = threading.Lock()

    def _build(self, system_id: str | None, spec: Any) -> _SystemDetectors:
        parsed: SystemSpec | None = None
        settings: dict[str, Any] = {}
        if spec is not None:
            # The settings are read per detector of this engine below: a setting of a
            # detector that is no longer installed must not stop the others.
            settings = dict(spec.get("detection") or {})
            try:
                parsed = SystemSpec.model_validate({**spec, "detection": {}})
            except ValidationError as exc:
                log.error("system %s: its inventory entry is invalid: %s", system_id, exc)
        context = SystemContext(system_id=system_id, spec=parsed, canaries=self.canaries)
        stateless: list[Detector] = []
        stateful: list[Detector] = []
        allowlists: dict[str, tuple[str, ...]] = {}
        for cls in self.classes:
            try:
                config = cls.Config.model_validate(settings.get(cls.id) or {})
            except ValidationError as exc:  # settings stored before a plugin changed its config
                log.error(
                    "system %s: detection.%s is invalid, using defaults: %s", system_id, cls.id, exc
                )
                config = cls.Config()
            if not config.enabled:
                continue
            try:
                detector = cls(config, context)
            except Exception:
                self.failures[cls.id] += 1
                log.exception("detector %s could not be built for system %s", cls.id, system_id)
                continue
            (stateful if cls.stateful else stateless).append(detector)
            if config.allowlist:
                allowlists[cls.id] = tuple(entry.lower() for entry in config.allowlist)
        return _SystemDetectors(spec, stateless, stateful, allowlists)

    def detectors(self, system_id: str | None, spec: Any) -> _SystemDetectors:
        """The detectors of a system whose inventory entry is `spec` (None: not in the
        inventory), rebuilt when `spec` differs from the one they were built from."""
        current = self._systems.get(system_id)
        if current is not None and (current.spec is spec or current.spec == spec):
            return current
        with self._lock:
            current = self._systems.get(system_id)
            if current is None or current.spec != spec:
                current = self._systems[system_id] = self._build(system_id, spec)
        return current

    def _run(self, detector: Detector, item: Item) -> list[Finding]:
        try:
            return detector.detect(item)
        except Exception:
            self.failures[detector.id] += 1
            log.exception("detector %s failed on an interaction of %s", detector.id, item.system_id)
            return []

    def run(
        self,
        items: Iterable[Item],
        spec_of: Callable[[str | None], Any],
        *,
        redact: bool = True,
    ) -> list[Detection]:
        """Every finding on `items`, in order. `spec_of(system_id)` is the system's inventory
        entry (a dict) or None. With `redact=False` the excerpts are left as found, for a
        caller that keeps only some of them and masks those itself (`redact_excerpt`).

        Each stateless detector goes over all of a system's items before the next one starts
        (a tenth less CPU than every detector in turn on each item: each keeps its tables in
        the processor's caches); the stateful ones then take the items in order."""
        batch = list(items)
        found: list[list[tuple[Detector, Finding]]] = [[] for _ in batch]
        systems: dict[str | None, tuple[_SystemDetectors, list[int]]] = {}
        for index, item in enumerate(batch):
            group = systems.get(item.system_id)
            if group is None:
                detectors = self.detectors(item.system_id, spec_of(item.system_id))
                group = systems[item.system_id] = (detectors, [])
            group[1].append(index)
        for system, indexes in systems.values():
            for detector in system.stateless:
                for index in indexes:
                    findings = self._run(detector, batch[index])
                    if findings:
                        batch[index].hits.append(detector.id)
                        found[index].extend((detector, f) for f in findings)
        detections: list[Detection] = []
        for index, item in enumerate(batch):
            system = systems[item.system_id][0]
            if system.stateful:
                with system.lock:
                    for detector in system.stateful:
                        found[index].extend((detector, f) for f in self._run(detector, item))
            if found[index]:
                self._collect(found[index], item, system, detections, redact)
        return detections

    def _collect(
        self,
        found: list[tuple[Detector, Finding]],
        item: Item,
        system: _SystemDetectors,
        into: list[Detection],
        redact: bool,
    ) -> None:
        for detector, finding in found:
            if finding.severity not in SEVERITIES or finding.archetype not in ARCHETYPES:
                self.failures[detector.id] += 1
                log.error(
                    "detector %s answered severity %r, archetype %r: finding dropped",
                    detector.id,
                    finding.severity,
                    finding.archetype,
                )
                continue
            self._check_taxonomy(detector, finding)
            allowed = system.allowlists.get(detector.id)
            if allowed and finding.matched:
                value = finding.matched.lower()
                if any(entry in value for entry in allowed):
                    continue
            if redact:
                redact_excerpt(finding)
            rests_on = finding.rests_on if finding.rests_on else [item]
            into.append(
                Detection(
                    detector.id,
                    detector.version,
                    finding,
                    rests_on[:MAX_RESTS_ON],
                    item.system_id,
                )
            )

    def _check_taxonomy(self, detector: Detector, finding: Finding) -> None:
        """Keep only the OWASP and ATLAS ids that are in the taxonomy tables: a wrong id
        stored on a signal would send people to the wrong technique."""
        tables = taxonomy()
        owasp, atlas = finding.owasp, finding.atlas
        unknown = tables.unknown((*owasp, *atlas))
        if not unknown:
            return
        self.failures[detector.id] += 1
        log.error("detector %s answered unknown taxonomy ids %s: dropped", detector.id, unknown)
        finding.owasp = tuple(i for i in owasp if i in tables)
        finding.atlas = tuple(i for i in atlas if i in tables)


def redact_excerpt(finding: Finding) -> None:
    """Mask the personal data in a finding's excerpt (and bound its length)."""
    if finding.excerpt:
        finding.excerpt = redact_text(finding.excerpt)[: EXCERPT_CHARS * 2]
