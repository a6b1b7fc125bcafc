"""Reading inventory YAML: each document is one system; problems carry file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from blastwall.detection.engine import validate_settings
from blastwall.errors import InvalidInput, Problem, field_path
from blastwall.inventory.schemas import SystemSpec
from blastwall.obligations.profile import PROFILE_NAMES


@dataclass(frozen=True)
class LoadedSystem:
    spec: SystemSpec
    file: str
    line: int


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the value at `loc` under `node`, or of its nearest ancestor."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _field(loc: tuple[int | str, ...]) -> str:
    return field_path(loc) or "(document)"


def yaml_files(path: Path) -> list[Path]:
    """The inventory files at `path`; the organisation profile beside them is not one."""
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in {".yaml", ".yml"} and p.name not in PROFILE_NAMES
        )
        if not files:
            raise InvalidInput(f"No .yaml or .yml files under {path}. Point at a file or folder.")
        return files
    if not path.exists():
        raise InvalidInput(f"{path} does not exist. Give an inventory file or a folder of them.")
    return [path]


def parse_documents(text: str, filename: str) -> tuple[list[LoadedSystem], list[Problem]]:
    """Validate every YAML document in `text`; answer the systems and the problems found."""
    systems: list[LoadedSystem] = []
    problems: list[Problem] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        documents = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problems.append(Problem(f"{filename}", f"not valid YAML: {exc.problem}", line))
        return systems, problems
    except yaml.YAMLError as exc:
        problems.append(Problem(f"{filename}", f"not valid YAML: {exc}"))
        return systems, problems
    for node, document in zip(nodes, documents, strict=True):
        if document is None:
            continue
        if not isinstance(document, dict):
            problems.append(
                Problem(
                    filename,
                    "each YAML document must be a mapping describing one system",
                    _line_of(node, ()),
                )
            )
            continue
        try:
            spec = SystemSpec.model_validate(document)
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(error["loc"])
                problems.append(
                    Problem(f"{filename}: {_field(loc)}", error["msg"], _line_of(node, loc))
                )
            continue
        wrong = detection_problems(spec)
        if wrong:
            problems.append(
                Problem(
                    f"{filename}: detection",
                    "; ".join(str(p) for p in wrong),
                    _line_of(node, ("detection",)),
                )
            )
            continue
        systems.append(LoadedSystem(spec, filename, _line_of(node, ()) or 1))
    return systems, problems


def load_path(path: Path, *, known_ids: set[str] | None = None) -> list[LoadedSystem]:
    """Load and check every system under `path`; raise InvalidInput listing all problems."""
    systems: list[LoadedSystem] = []
    problems: list[Problem] = []
    for file in yaml_files(path):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(file), f"cannot be read: {exc}"))
            continue
        found, file_problems = parse_documents(text, str(file))
        systems.extend(found)
        problems.extend(file_problems)
    if not problems:
        problems.extend(check_references(systems, known_ids or set()))
    if problems:
        raise InvalidInput(
            f"The inventory has {len(problems)} problem(s); nothing was applied. "
            "Fix each one and apply again.",
            problems,
        )
    return systems


def check_references(systems: list[LoadedSystem], known_ids: set[str]) -> list[Problem]:
    """Duplicate ids and dependencies on systems that exist nowhere."""
    problems: list[Problem] = []
    first: dict[str, LoadedSystem] = {}
    for item in systems:
        if item.spec.id in first:
            other = first[item.spec.id]
            problems.append(
                Problem(
                    f"{item.file}: id",
                    f"system '{item.spec.id}' is also declared in {other.file} line {other.line}",
                    item.line,
                )
            )
        first.setdefault(item.spec.id, item)
    ids = set(first) | known_ids
    for item in systems:
        for index, dep in enumerate(item.spec.depends_on):
            if dep not in ids:
                problems.append(
                    Problem(
                        f"{item.file}: depends_on[{index}]",
                        f"no system '{dep}' in the inventory; declare it or remove the dependency",
                        item.line,
                    )
                )
    return problems


def detection_problems(spec: SystemSpec) -> list[Problem]:
    """What is wrong with the system's `detection:` settings, checked against the detectors
    installed (each detector's settings are its own), located within `detection`."""
    if not spec.detection:
        return []
    try:
        validate_settings(spec.detection)
    except InvalidInput as exc:
        return list(exc.problems)
    return []


def spec_from_mapping(document: Any, *, where: str = "body") -> SystemSpec:
    """Validate one system given as a mapping (from JSON), with field paths in the problems."""
    try:
        spec = SystemSpec.model_validate(document)
    except ValidationError as exc:
        problems = [Problem(f"{where}.{_field(tuple(e['loc']))}", e["msg"]) for e in exc.errors()]
        raise InvalidInput("The system declaration is invalid.", problems) from exc
    wrong = detection_problems(spec)
    if wrong:
        problems = [Problem(f"{where}.detection.{p.location}", p.message) for p in wrong]
        raise InvalidInput("The system declaration is invalid.", problems)
    return spec
