"""Policies kept as YAML files of sections (the correlation and severity policy, the
audiences): the shipped file holds every section, and an organisation's file replaces the
sections it names. One reader for all of them, so that each says the same thing about a
file it cannot read, a line that is not YAML, and a result that does not validate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from blastwall.errors import InvalidInput, Problem, field_path

__all__ = ["SectionedPolicy"]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class SectionedPolicy:
    """How to speak of one kind of policy: `what` ("correlation policy"), the setting that
    names its file (`BLASTWALL_CORRELATION_POLICY`), and its sections, for the messages."""

    what: str
    setting: str
    sections: str

    def read(self, path: Path) -> dict[str, Any]:
        """The sections in the file at `path`; InvalidInput saying where it is wrong."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(
                f"Cannot read the {self.what} {path}: {exc.strerror}. Fix the path in "
                f"{self.setting}, or unset it to use the defaults."
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise InvalidInput(
                f"The {self.what} {path} is not valid YAML.",
                [Problem(str(path), str(getattr(exc, "problem", exc)), line)],
            ) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise InvalidInput(
                f"The {self.what} {path} must be a mapping of sections ({self.sections})."
            )
        return data

    def load(
        self,
        model: type[M],
        default: Path,
        path: Path | None,
        check: Callable[[M], list[Problem]],
    ) -> M:
        """The policy in `default`, with the sections of the file at `path` (if any)
        replacing its own; InvalidInput listing every problem when the result does not
        validate (the model's, then `check`'s)."""
        data = self.read(default)
        where = str(default)
        if path is not None:
            data.update(self.read(path))
            where = str(path)
        try:
            policy = model.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(
                f"The {self.what} {where} is invalid; fix these and retry.",
                [Problem(field_path(e["loc"]), e["msg"]) for e in exc.errors()],
            ) from None
        problems = check(policy)
        if problems:
            raise InvalidInput(f"The {self.what} {where} is invalid.", problems)
        return policy
