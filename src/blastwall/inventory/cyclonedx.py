"""CycloneDX 1.6 ML-BOM import and export of one AI system (`SystemSpec`).

Export (`to_cyclonedx`) writes a CycloneDX 1.6 JSON BOM with cyclonedx-python-lib:

    system                 metadata.component, type `application`, bom-ref `system:<id>`;
                           name, description native; owner.team is its `supplier.name`
    models[]               components, type `machine-learning-model`, bom-ref `model:<id>`;
                           name, version native; provider is `supplier.name` and `publisher`
    prompts[]              components, type `data`, bom-ref `prompt:<id>`, name = id, version;
                           content_hash `sha256:<hex>` is a `SHA-256` entry in `hashes`;
                           the prompt's text (`content`) is not exported, as BOMs travel;
                           import keeps the stored text of a prompt whose hash is unchanged
    data_sources[]         components, type `data`, bom-ref `data:<id>`, name = id, description
    tools[]                services, bom-ref `tool:<name>`, name, description
    dependencies           the system depends on every model, prompt, data source and tool

Everything without a native CycloneDX field is a property named `blastwall:<key>`; structured
values are JSON-encoded, plain strings are written as they are, and empty lists and absent
values are left out:

    system component       type, risk_tier, eu_ai_act_high_risk (`true`/`false`), risk_notes,
                           owner_contacts, on_call, approved_uses, depends_on (other systems),
                           fallback, controls, vendors (CycloneDX has no list of organisations),
                           telemetry (service names and content policy), agents,
                           detection (detector settings)
    every part             index (its position in the spec's list; the library sorts parts)
    data sources           kind, sensitivity
    tools                  connector, permissions, constraints

Import (`from_cyclonedx`) parses the JSON, checks it against the CycloneDX JSON schema of its
`specVersion` (1.2 to 1.7) with the library's validator when the library's `json-validation`
extra is installed (no network: the schemas ship with the library), reads it with
`Bom.from_json`, and validates the result as a `SystemSpec`. Any problem raises `InvalidInput`.

BOMs made by other tools (no `blastwall:` properties) import with these defaults:

    id                     from the bom-ref if it is `<kind>:<slug>`, else the name slugified
                           (lower case, runs of other characters become `-`); a clash gets
                           `-2`, `-3`...; a name with nothing left becomes `system`, `model`...
    owner.team             supplier name of metadata.component, else its manufacturer, else
                           metadata.supplier, metadata.manufacturer, the publisher; else `unknown`
    type, risk             `generative`; tier `minimal`, not EU AI Act high-risk
    models                 every `machine-learning-model` component (nested ones too); version
                           `unknown` if absent; provider: supplier name, publisher, manufacturer,
                           group, else `unknown`
    prompts                `data` components whose bom-ref starts with `prompt:`; they need a
                           SHA-256 hash; version `unknown` if absent
    data_sources           the other `data` components: kind `retrieval`, sensitivity `internal`
    tools                  every service; connector: its first endpoint
    ignored                other component types (libraries, frameworks...), other properties
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, cast

from cyclonedx.exception import MissingOptionalDependencyException
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.contact import OrganizationalEntity
from cyclonedx.model.service import Service
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from pydantic import ValidationError

from blastwall import __version__
from blastwall.errors import InvalidInput, Problem
from blastwall.inventory.schemas import SystemSpec

PREFIX = "blastwall:"
READABLE_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")
_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_SCHEMA_HELP = "https://cyclonedx.org/docs/1.6/json/ describes every field"


# ---------------------------------------------------------------------------------------- export


def _props(**values: object) -> list[Property]:
    """`blastwall:<key>` properties; None and empty lists/dicts are left out."""
    out: list[Property] = []
    for key, value in values.items():
        if value is None or value == [] or value == {}:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        out.append(Property(name=PREFIX + key, value=text))
    return out


def to_cyclonedx(spec: SystemSpec) -> str:
    """The system as a CycloneDX 1.6 JSON ML-BOM (see the module docstring for the mapping)."""
    data = spec.model_dump(mode="json", exclude_none=True)
    system = Component(
        type=ComponentType.APPLICATION,
        bom_ref=f"system:{spec.id}",
        name=spec.name,
        description=spec.description,
        supplier=OrganizationalEntity(name=spec.owner.team),
        properties=_props(
            type=spec.type.value,
            risk_tier=spec.risk.tier.value,
            eu_ai_act_high_risk=spec.risk.eu_ai_act_high_risk,
            risk_notes=spec.risk.notes,
            owner_contacts=data["owner"]["contacts"],
            on_call=data.get("on_call"),
            approved_uses=spec.approved_uses,
            depends_on=spec.depends_on,
            fallback=spec.fallback,
            controls=data["controls"],
            vendors=data["components"]["vendors"],
            telemetry=data["telemetry"],
            agents=data["agents"],
            detection=data["detection"],
        ),
    )
    bom = Bom()
    bom.metadata.component = system
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="blastwall", version=__version__)
    )
    _add_parts(bom, spec, data)
    bom.register_dependency(system, [*bom.components, *bom.services])
    return make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2)


def _add_parts(bom: Bom, spec: SystemSpec, data: dict[str, Any]) -> None:
    """The system's models, prompts, data sources (components) and tools (services)."""
    parts = spec.components
    for i, m in enumerate(parts.models):
        provider = OrganizationalEntity(name=m.provider)
        bom.components.add(
            Component(
                type=ComponentType.MACHINE_LEARNING_MODEL,
                bom_ref=f"model:{m.id}",
                name=m.name,
                version=m.version,
                supplier=provider,
                publisher=m.provider,
                properties=_props(index=i),
            )
        )
    for i, p in enumerate(parts.prompts):
        digest = p.content_hash.removeprefix("sha256:")
        bom.components.add(
            Component(
                type=ComponentType.DATA,
                bom_ref=f"prompt:{p.id}",
                name=p.id,
                version=p.version,
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)],
                properties=_props(index=i),
            )
        )
    for i, d in enumerate(parts.data_sources):
        bom.components.add(
            Component(
                type=ComponentType.DATA,
                bom_ref=f"data:{d.id}",
                name=d.id,
                description=d.description,
                properties=_props(index=i, kind=d.kind, sensitivity=d.sensitivity.value),
            )
        )
    for i, t in enumerate(parts.tools):
        bom.services.add(
            Service(
                bom_ref=f"tool:{t.name}",
                name=t.name,
                description=t.description,
                properties=_props(
                    index=i,
                    connector=t.connector,
                    permissions=t.permissions,
                    constraints=data["components"]["tools"][i]["constraints"],
                ),
            )
        )


# ---------------------------------------------------------------------------------------- import


def _fail(detail: str, location: str, message: str, line: int | None = None) -> InvalidInput:
    return InvalidInput(detail, [Problem(location, message, line)])


def _check_document(text: str) -> dict[str, Any]:
    """The parsed BOM, after the checks that do not need the library's model."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            "The BOM is not valid JSON. Export it as CycloneDX JSON (not XML) and try again.",
            "$",
            f"not valid JSON: {exc.msg}",
            exc.lineno,
        ) from None
    if not isinstance(raw, dict) or raw.get("bomFormat") != "CycloneDX":
        where, what = (
            ("$.bomFormat", "must be 'CycloneDX'")
            if isinstance(raw, dict)
            else ("$", "must be a JSON object")
        )
        raise _fail("This is not a CycloneDX BOM. Give a CycloneDX JSON document.", where, what)
    version = raw.get("specVersion")
    if version not in READABLE_VERSIONS:
        raise _fail(
            f"Blastwall reads CycloneDX JSON {', '.join(READABLE_VERSIONS)}; "
            "re-export the BOM as CycloneDX 1.6.",
            "$.specVersion",
            f"unsupported value {version!r}",
        )
    problems = _schema_problems(text, SchemaVersion.from_version(version))
    if problems:
        raise InvalidInput(
            f"The BOM does not follow the CycloneDX {version} JSON schema. Fix the fields "
            f"listed and import it again; {_SCHEMA_HELP}.",
            problems,
        )
    metadata = raw.get("metadata")
    root = metadata.get("component") if isinstance(metadata, dict) else None
    if not isinstance(root, dict):
        raise _fail(
            "The BOM does not say which system it describes. Add metadata.component (type "
            "'application', with a name): Blastwall imports one system per BOM.",
            "$.metadata.component",
            "missing",
        )
    if not isinstance(root.get("name"), str) or not root["name"]:
        raise _fail(
            "The system in the BOM has no name. Give metadata.component a name.",
            "$.metadata.component.name",
            "missing or empty",
        )
    return raw


def _schema_problems(text: str, version: SchemaVersion) -> list[Problem]:
    """Schema errors (at most 20), or none if the library's validator is not installed."""
    # Imported here: the validator pulls in jsonschema's format checkers, whose import builds
    # grammars and costs the server's start over a second.
    from cyclonedx.validation.json import JsonValidator

    try:
        errors = JsonValidator(version).validate_str(text, all_errors=True)
    except MissingOptionalDependencyException:
        return []  # cyclonedx-python-lib[json-validation] is absent: the later checks remain
    problems: list[Problem] = []
    for error in errors or ():
        detail: Any = error.data
        message = str(getattr(detail, "message", detail))
        message = message if len(message) <= 300 else message[:297] + "..."
        problems.append(Problem(str(getattr(detail, "json_path", "$")), message))
        if len(problems) == 20:
            break
    return problems


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:100].rstrip("-._")


class _Reader:
    """Turns the library's model into `SystemSpec` data, collecting problems on the way."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.used: dict[str, set[str]] = {}

    def ident(self, ref: str | None, kind: str, name: str) -> str:
        prefix = f"{kind}:"
        base = ref[len(prefix) :] if ref and ref.startswith(prefix) else ""
        base = base if _SLUG.fullmatch(base) else (_slug(name) or kind)
        used = self.used.setdefault(kind, set())
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base[: 99 - len(str(n))]}-{n}"
        used.add(candidate)
        return candidate

    def decoded(self, where: str, props: dict[str, str], key: str, default: Any) -> Any:
        """The JSON-encoded property `key`, or `default` if absent (a problem if not JSON)."""
        if key not in props:
            return default
        try:
            return json.loads(props[key])
        except json.JSONDecodeError as exc:
            message = f"not valid JSON ({exc.msg}); write the value JSON-encoded"
            self.problems.append(Problem(f"{where}.properties[{PREFIX}{key}]", message))
            return default


def _props_of(properties: Iterable[Property]) -> dict[str, str]:
    """The `blastwall:` properties by key (prefix removed), values as written."""
    return {p.name[len(PREFIX) :]: p.value or "" for p in properties if p.name.startswith(PREFIX)}


def _index(item: Component | Service) -> int:
    value = _props_of(item.properties).get("index", "")
    return int(value) if re.fullmatch(r"[0-9]{1,9}", value) else 1 << 30


def _walk(components: Iterable[Component]) -> list[Component]:
    return sorted((x for c in components for x in (c, *_walk(c.components))), key=_index)


def _walk_services(services: Iterable[Service]) -> list[Service]:
    return sorted((x for s in services for x in (s, *_walk_services(s.services))), key=_index)


def _org(entity: OrganizationalEntity | None) -> str | None:
    return entity.name if entity is not None and entity.name else None


def from_cyclonedx(text: str) -> SystemSpec:
    """The system a CycloneDX JSON BOM describes; `InvalidInput` says what is wrong with it."""
    bom, root = _read_bom(text)
    r, props, at = _Reader(), _props_of(root.properties), "$.metadata.component"
    team = (
        _org(root.supplier)
        or _org(root.manufacturer)
        or _org(bom.metadata.supplier)
        or _org(bom.metadata.manufacturer)
        or root.publisher
        or "unknown"
    )
    models, prompts, data_sources = _components(r, bom)
    tools = _tools(r, bom)
    spec: dict[str, Any] = {
        "id": r.ident(root.bom_ref.value, "system", root.name),
        "name": root.name,
        "description": root.description,
        "owner": {"team": team, "contacts": r.decoded(at, props, "owner_contacts", [])},
        "on_call": r.decoded(at, props, "on_call", None),
        "type": props.get("type", "generative"),
        "risk": {
            "tier": props.get("risk_tier", "minimal"),
            "eu_ai_act_high_risk": r.decoded(at, props, "eu_ai_act_high_risk", False),
            "notes": props.get("risk_notes"),
        },
        "approved_uses": r.decoded(at, props, "approved_uses", []),
        "components": {
            "models": models,
            "prompts": prompts,
            "data_sources": data_sources,
            "tools": tools,
            "vendors": r.decoded(at, props, "vendors", []),
        },
        "depends_on": r.decoded(at, props, "depends_on", []),
        "fallback": props.get("fallback"),
        "controls": r.decoded(at, props, "controls", []),
        "telemetry": r.decoded(at, props, "telemetry", {}),
        "agents": r.decoded(at, props, "agents", []),
        "detection": r.decoded(at, props, "detection", {}),
    }
    if r.problems:
        raise InvalidInput(
            "The BOM's Blastwall properties cannot be read; fix them and import it again.",
            r.problems,
        )
    return _validated(spec)


def _read_bom(text: str) -> tuple[Bom, Component]:
    """The BOM through the library's model, after the document's checks, and the system it
    describes."""
    raw = _check_document(text)
    try:
        bom = cast(Any, Bom).from_json(raw)
    except Exception as exc:  # the library raises many kinds on malformed input
        raise _fail(
            "cyclonedx-python-lib could not read the BOM. Check it against the CycloneDX "
            f"schema and import it again; {_SCHEMA_HELP}.",
            "$",
            f"{type(exc).__name__}: {exc}",
        ) from None
    if not isinstance(bom, Bom) or bom.metadata.component is None:
        raise _fail("The BOM has no metadata.component; add the system there.", "$", "missing")
    return bom, bom.metadata.component


Part = dict[str, Any]


def _components(r: _Reader, bom: Bom) -> tuple[list[Part], list[Part], list[Part]]:
    """The models, prompts and data sources among the BOM's components (nested ones too)."""
    models: list[Part] = []
    prompts: list[Part] = []
    data_sources: list[Part] = []
    for c in _walk(bom.components):
        ref, own = c.bom_ref.value, _props_of(c.properties)
        if c.type is ComponentType.MACHINE_LEARNING_MODEL:
            provider = (
                _org(c.supplier) or c.publisher or _org(c.manufacturer) or c.group or "unknown"
            )
            model_id = r.ident(ref, "model", c.name)
            version = c.version or "unknown"
            models.append(
                {"id": model_id, "provider": provider, "name": c.name, "version": version}
            )
        elif c.type is ComponentType.DATA and ref and ref.startswith("prompt:"):
            sha = [h.content.lower() for h in c.hashes if h.alg is HashAlgorithm.SHA_256]
            if not sha:
                message = "a prompt needs a SHA-256 hash of its content in `hashes`"
                r.problems.append(Problem(f"component {ref}", message))
            prompts.append(
                {
                    "id": r.ident(ref, "prompt", c.name),
                    "version": c.version or "unknown",
                    "content_hash": f"sha256:{sha[0] if sha else ''}",
                }
            )
        elif c.type is ComponentType.DATA:
            source = {
                "id": r.ident(ref, "data", c.name),
                "kind": own.get("kind", "retrieval"),
                "sensitivity": own.get("sensitivity", "internal"),
            }
            if c.description is not None:
                source["description"] = c.description
            data_sources.append(source)
    return models, prompts, data_sources


def _tools(r: _Reader, bom: Bom) -> list[Part]:
    """The BOM's services as tools; the connector is the first endpoint if not given."""
    tools: list[Part] = []
    for s in _walk_services(bom.services):
        ref, own, where = s.bom_ref.value, _props_of(s.properties), f"service {s.name}"
        endpoints = [str(e) for e in s.endpoints]
        tools.append(
            {
                "name": r.ident(ref, "tool", s.name),
                "description": s.description,
                "connector": own.get("connector", endpoints[0] if endpoints else None),
                "permissions": r.decoded(where, own, "permissions", []),
                "constraints": r.decoded(where, own, "constraints", {}),
            }
        )
    return tools


def _validated(spec: dict[str, Any]) -> SystemSpec:
    try:
        return SystemSpec.model_validate(spec)
    except ValidationError as exc:
        raise InvalidInput(
            "The BOM does not describe a valid Blastwall system; fix the fields listed (the "
            "location is the field of the imported system) and import it again.",
            [
                Problem("system." + ".".join(str(part) for part in e["loc"]), e["msg"])
                for e in exc.errors()
            ],
        ) from None
