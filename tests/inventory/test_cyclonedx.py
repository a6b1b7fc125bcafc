"""CycloneDX ML-BOM export and import of one system (`blastwall.inventory.cyclonedx`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.exception import MissingOptionalDependencyException
from cyclonedx.schema import SchemaVersion
from cyclonedx.schema._res import BOM_JSON, JSF, SPDX_JSON
from cyclonedx.validation.json import JsonStrictValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blastwall.errors import InvalidInput
from blastwall.inventory.cyclonedx import from_cyclonedx, to_cyclonedx
from blastwall.inventory.schemas import (
    ArgumentConstraint,
    Components,
    Contact,
    Control,
    DataSource,
    Model,
    OnCall,
    Owner,
    Prompt,
    Risk,
    RiskTier,
    Sensitivity,
    SystemSpec,
    SystemType,
    Tool,
    Vendor,
)

RICH = SystemSpec(
    id="support-bot",
    name="Customer Support Bot",
    description="Answers customer questions and issues small refunds.",
    owner=Owner(
        team="Customer Experience",
        contacts=[
            Contact(name="Ana Lima", email="ana@example.com", phone="+44 20 0000 0000"),
            Contact(name="CX channel", chat="#cx-ai"),
        ],
    ),
    on_call=OnCall(name="cx-ai-oncall", pager="pagerduty:PX1234", email="oncall@example.com"),
    type=SystemType.agentic,
    risk=Risk(tier=RiskTier.high, eu_ai_act_high_risk=True, notes="Handles personal data."),
    approved_uses=["answer product questions", "refunds up to 100 EUR"],
    components=Components(
        models=[
            Model(id="primary", provider="OpenAI", name="gpt-4o", version="2024-08-06"),
            Model(id="fallback", provider="Anthropic", name="claude-3-5-haiku", version="20241022"),
        ],
        prompts=[
            Prompt(id="system", version="12", content_hash="sha256:" + "0f" * 32),
            Prompt(id="refund-policy", version="3", content_hash="sha256:" + "a1" * 32),
        ],
        data_sources=[
            DataSource(id="help-centre", description="Public articles", sensitivity="public"),
            DataSource(id="orders", kind="database", sensitivity=Sensitivity.personal),
        ],
        tools=[
            Tool(
                name="issue_refund",
                description="Refund an order",
                connector="stripe",
                permissions=["refunds:create", "orders:read"],
                constraints={
                    "amount": ArgumentConstraint(max=100, min=0.01),
                    "currency": ArgumentConstraint(allowed=["EUR", "GBP"]),
                    "callback": ArgumentConstraint(
                        allowed_domains=["example.com"], pattern=r"^https://"
                    ),
                },
            ),
            Tool(name="lookup_order"),
        ],
        vendors=[
            Vendor(
                name="openai",
                contacts=[Contact(name="Enterprise support", email="support@openai.com")],
                support="https://help.openai.com",
            ),
            Vendor(name="stripe"),
        ],
    ),
    depends_on=["crm", "payments.api"],
    fallback="Route every conversation to the human support queue.",
    controls=[Control.suspend, Control.revoke_tool, Control.require_approval],
)


def _schema_errors(text: str) -> list[str]:
    """CycloneDX 1.6 JSON schema errors, from the schemas shipped with cyclonedx-python-lib.

    The library's own validator needs its `json-validation` extra (jsonschema, referencing);
    without it, the same schema files are checked with jsonschema_rs. Neither uses the network.
    """
    try:
        errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
        return [str(getattr(e.data, "message", e)) for e in errors or ()]
    except MissingOptionalDependencyException:
        pass
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    local = {
        "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json": SPDX_JSON,
        "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json": JSF,
    }

    def retrieve(uri: str) -> Any:
        return json.loads(Path(local[uri]).read_text())  # KeyError: no other (remote) schema

    schema = json.loads(Path(str(BOM_JSON[SchemaVersion.V1_6])).read_text())
    validator = jsonschema_rs.Draft7Validator(schema, retriever=retrieve)
    return [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(json.loads(text))]


def test_rich_spec_round_trips() -> None:
    assert from_cyclonedx(to_cyclonedx(RICH)) == RICH


def test_minimal_spec_round_trips() -> None:
    spec = SystemSpec(
        id="s", name="S", owner=Owner(team="t"), type="predictive", risk=Risk(tier="minimal")
    )
    assert from_cyclonedx(to_cyclonedx(spec)) == spec


def test_export_is_a_valid_cyclonedx_1_6_ml_bom() -> None:
    text = to_cyclonedx(RICH)
    assert _schema_errors(text) == []
    bom = json.loads(text)
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    system = bom["metadata"]["component"]
    assert system["type"] == "application"
    assert system["bom-ref"] == "system:support-bot"
    assert system["supplier"] == {"name": "Customer Experience"}
    props = {p["name"]: p["value"] for p in system["properties"]}
    assert props["blastwall:risk_tier"] == "high"
    assert props["blastwall:eu_ai_act_high_risk"] == "true"
    assert json.loads(props["blastwall:controls"]) == ["suspend", "revoke_tool", "require_approval"]
    assert all(name.startswith("blastwall:") for name in props)
    by_ref = {c["bom-ref"]: c for c in bom["components"]}
    model = by_ref["model:primary"]
    assert model["type"] == "machine-learning-model"
    assert (model["name"], model["version"], model["publisher"]) == (
        "gpt-4o",
        "2024-08-06",
        "OpenAI",
    )
    assert model["supplier"] == {"name": "OpenAI"}
    prompt = by_ref["prompt:system"]
    assert prompt["type"] == "data"
    assert prompt["hashes"] == [{"alg": "SHA-256", "content": "0f" * 32}]
    assert by_ref["data:orders"]["type"] == "data"
    assert {s["bom-ref"] for s in bom["services"]} == {"tool:issue_refund", "tool:lookup_order"}
    deps = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert set(deps["system:support-bot"]) == set(by_ref) | {
        "tool:issue_refund",
        "tool:lookup_order",
    }


def test_schema_check_rejects_a_broken_bom() -> None:
    bom = json.loads(to_cyclonedx(RICH))
    bom["components"][0]["type"] = "spaceship"
    assert _schema_errors(json.dumps(bom))


# ------------------------------------------------------------------------------- property test

slugs = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z")
texts = st.text(min_size=1, max_size=30)
maybe = st.none() | st.text(max_size=30)
contacts = st.builds(Contact, name=texts, email=maybe, phone=maybe, chat=maybe)
constraints = st.builds(
    ArgumentConstraint,
    max=st.none() | st.floats(allow_nan=False),
    min=st.none() | st.floats(allow_nan=False),
    allowed=st.none() | st.lists(st.text(max_size=10), max_size=3),
    allowed_domains=st.none() | st.lists(st.text(max_size=10), max_size=3),
    pattern=maybe,
)
components = st.builds(
    Components,
    models=st.lists(
        st.builds(Model, id=slugs, provider=texts, name=texts, version=texts),
        max_size=3,
        unique_by=lambda m: m.id,
    ),
    prompts=st.lists(
        st.builds(
            Prompt,
            id=slugs,
            version=texts,
            content_hash=st.from_regex(r"\Asha256:[0-9a-f]{64}\Z"),
        ),
        max_size=3,
        unique_by=lambda p: p.id,
    ),
    data_sources=st.lists(
        st.builds(
            DataSource,
            id=slugs,
            kind=texts,
            description=maybe,
            sensitivity=st.sampled_from(Sensitivity),
        ),
        max_size=3,
        unique_by=lambda d: d.id,
    ),
    tools=st.lists(
        st.builds(
            Tool,
            name=slugs,
            description=maybe,
            connector=maybe,
            permissions=st.lists(texts, max_size=3),
            constraints=st.dictionaries(st.text(max_size=10), constraints, max_size=2),
        ),
        max_size=3,
        unique_by=lambda t: t.name,
    ),
    vendors=st.lists(
        st.builds(Vendor, name=slugs, contacts=st.lists(contacts, max_size=2), support=maybe),
        max_size=2,
        unique_by=lambda v: v.name,
    ),
)
specs = st.builds(
    SystemSpec,
    id=slugs,
    name=texts,
    description=maybe,
    owner=st.builds(Owner, team=texts, contacts=st.lists(contacts, max_size=2)),
    on_call=st.none() | st.builds(OnCall, name=texts, pager=maybe, email=maybe),
    type=st.sampled_from(SystemType),
    risk=st.builds(
        Risk, tier=st.sampled_from(RiskTier), eu_ai_act_high_risk=st.booleans(), notes=maybe
    ),
    approved_uses=st.lists(texts, max_size=3),
    components=components,
    depends_on=st.lists(slugs, max_size=3),
    fallback=maybe,
    controls=st.lists(st.sampled_from(Control), max_size=4),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs)
def test_round_trip_property(spec: SystemSpec) -> None:
    assert from_cyclonedx(to_cyclonedx(spec)) == spec


# -------------------------------------------------------------------------------- foreign BOM

FOREIGN: dict[str, Any] = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
    "version": 1,
    "metadata": {
        "timestamp": "2024-05-01T12:00:00Z",
        "tools": {"components": [{"type": "application", "name": "scanner", "version": "2"}]},
        "manufacturer": {"name": "Acme Corp"},
        "component": {
            "type": "application",
            "bom-ref": "acme-bot@1.2",
            "name": "Acme Support Bot",
            "version": "1.2",
            "description": "Answers customer questions.",
        },
    },
    "components": [
        {
            "type": "machine-learning-model",
            "bom-ref": "pkg:huggingface/meta-llama/Llama-3.1-8B-Instruct@0e9e39f",
            "name": "Llama-3.1-8B-Instruct",
            "group": "meta-llama",
            "version": "0e9e39f",
            "publisher": "Meta",
            "purl": "pkg:huggingface/meta-llama/Llama-3.1-8B-Instruct@0e9e39f",
            "modelCard": {"modelParameters": {"task": "text-generation"}},
        },
        {"type": "machine-learning-model", "name": "Reranker v2", "supplier": {"name": "Cohere"}},
        {"type": "library", "name": "transformers", "version": "4.44.0"},
        {"type": "data", "bom-ref": "kb", "name": "Support KB", "description": "Help articles"},
    ],
    "services": [
        {"bom-ref": "svc-1", "name": "Ticket API", "endpoints": ["https://t.example/api"]}
    ],
    "dependencies": [{"ref": "acme-bot@1.2", "dependsOn": ["kb"]}],
}


def test_foreign_bom_imports_with_defaults() -> None:
    assert _schema_errors(json.dumps(FOREIGN)) == []
    spec = from_cyclonedx(json.dumps(FOREIGN))
    assert spec.id == "acme-support-bot"
    assert spec.name == "Acme Support Bot"
    assert spec.description == "Answers customer questions."
    assert spec.owner == Owner(team="Acme Corp")
    assert spec.type is SystemType.generative
    assert spec.risk == Risk(tier=RiskTier.minimal)
    assert sorted(spec.components.models, key=lambda m: m.id) == [
        Model(
            id="llama-3.1-8b-instruct",
            provider="Meta",
            name="Llama-3.1-8B-Instruct",
            version="0e9e39f",
        ),
        Model(id="reranker-v2", provider="Cohere", name="Reranker v2", version="unknown"),
    ]
    assert spec.components.data_sources == [
        DataSource(id="support-kb", description="Help articles", sensitivity="internal")
    ]
    assert spec.components.tools == [Tool(name="ticket-api", connector="https://t.example/api")]
    assert spec.components.prompts == [] and spec.components.vendors == []


def test_foreign_bom_owner_falls_back_to_unknown_and_ids_stay_unique() -> None:
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "metadata": {"component": {"type": "application", "name": "Ünïcode ☃"}},
        "components": [
            {"type": "machine-learning-model", "name": "GPT 4", "version": "1"},
            {"type": "machine-learning-model", "name": "gpt-4", "version": "2"},
        ],
    }
    spec = from_cyclonedx(json.dumps(bom))
    assert spec.owner.team == "unknown"
    assert spec.id == "n-code"
    assert sorted(m.id for m in spec.components.models) == ["gpt-4", "gpt-4-2"]
    assert {m.provider for m in spec.components.models} == {"unknown"}


# ----------------------------------------------------------------------------- invalid inputs


def _problems(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        from_cyclonedx(text)
    assert caught.value.problems, "InvalidInput must list its problems"
    return caught.value


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("{not json", "$"),
        ("[1, 2]", "$"),
        (json.dumps({"bomFormat": "SPDX", "specVersion": "1.6"}), "$.bomFormat"),
        (json.dumps({"bomFormat": "CycloneDX", "specVersion": "9.9"}), "$.specVersion"),
        (json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6"}), "$.metadata.component"),
        (
            json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "metadata": {}}),
            "$.metadata.component",
        ),
    ],
)
def test_invalid_input_is_rejected(text: str, location: str) -> None:
    error = _problems(text)
    assert error.problems[0].location == location
    assert error.status_code == 422


def test_not_json_reports_the_line() -> None:
    error = _problems('{\n  "bomFormat": "CycloneDX",\n  oops\n}')
    assert error.problems[0].line == 3
    assert "JSON" in error.detail


def test_component_without_name_is_rejected() -> None:
    bom = json.loads(json.dumps(FOREIGN))
    del bom["metadata"]["component"]["name"]
    error = _problems(json.dumps(bom))
    assert [(p.location, p.message) for p in error.problems] == [
        ("$.metadata.component", "'name' is a required property")
    ]


def test_bad_blastwall_values_are_reported_per_field() -> None:
    bom = json.loads(to_cyclonedx(RICH))
    for prop in bom["metadata"]["component"]["properties"]:
        if prop["name"] == "blastwall:risk_tier":
            prop["value"] = "catastrophic"
        if prop["name"] == "blastwall:controls":
            prop["value"] = "[suspend"
    error = _problems(json.dumps(bom))
    assert [p.location for p in error.problems] == [
        "$.metadata.component.properties[blastwall:controls]"
    ]
    for prop in bom["metadata"]["component"]["properties"]:
        if prop["name"] == "blastwall:controls":
            prop["value"] = '["suspend"]'
    error = _problems(json.dumps(bom))
    assert [p.location for p in error.problems] == ["system.risk.tier"]


def test_prompt_without_hash_is_rejected() -> None:
    bom = json.loads(to_cyclonedx(RICH))
    for component in bom["components"]:
        if component["bom-ref"] == "prompt:system":
            del component["hashes"]
    error = _problems(json.dumps(bom))
    assert error.problems[0].location == "component prompt:system"


def test_invalid_spec_field_is_rejected() -> None:
    bom = json.loads(to_cyclonedx(RICH))
    bom["metadata"]["component"]["name"] = "x" * 2001
    error = _problems(json.dumps(bom))
    assert error.problems[0].location == "system.name"


def test_bom_breaking_the_cyclonedx_schema_is_rejected() -> None:
    bom = json.loads(json.dumps(FOREIGN))
    bom["components"][0]["type"] = "spaceship"
    error = _problems(json.dumps(bom))
    assert "CycloneDX" in error.detail
