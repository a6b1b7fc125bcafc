"""API fuzzing with schemathesis against /openapi.json: no input may cause a 5xx answer."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from blastwall.api import create_app
from blastwall.auth import service as auth_service
from blastwall.auth.roles import Role
from blastwall.db import Database
from blastwall.incidents import flows as incident_flows
from blastwall.incidents.schemas import Archetype, IncidentCreate, Severity
from blastwall.inventory import service as inventory_service
from blastwall.inventory.loader import load_path
from blastwall.settings import Settings
from tests.conftest import EXAMPLES

TOKEN: dict[str, str] = {}


@pytest.fixture
def fuzz_app(db: Database, settings: Settings) -> FastAPI:
    """The API on the test database (rolled back afterwards), with the example inventory,
    one incident and an admin token."""
    with db.transaction() as session:
        specs = [i.spec for i in load_path(EXAMPLES)]
        inventory_service.apply_specs(session, specs=specs, actor="fuzz")
        _, TOKEN["value"] = auth_service.create_token(
            session, name="fuzz", role=Role.admin, created_by="fuzz"
        )
        principal = auth_service.authenticate(session, token=TOKEN["value"])
        incident_flows.open_incident(
            session,
            data=IncidentCreate(
                title="seed",
                archetype=Archetype.prompt_injection,
                severity=Severity.SEV3,
                systems=["support-chatbot"],
            ),
            actor=principal,
        )
    return create_app(db, settings)


READ_TIMEOUT = 300.0
"""Seconds an answer may take: a ceiling for a loaded machine (schemathesis' default, 10 s,
failed requests that were merely slow). The control stream never ends by itself; its
examples are read for schemathesis' default time and kept as far as they went."""


#: The operations are fuzzed in this many tests (every SHARDS-th operation each), so that
#: the test workers share them.
SHARDS = 4


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_server_errors(fuzz_app: FastAPI, shard: int) -> None:
    """Every operation, fed generated valid and invalid input, answers below 500."""
    api_schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    headers = {"Authorization": f"Bearer {TOKEN['value']}"}
    operations = 0
    for index, result in enumerate(api_schema.get_all_operations()):
        assert isinstance(result, Ok), result
        operations += 1
        if index % SHARDS != shard:
            continue
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def call(case: schemathesis.Case[Any]) -> None:
            stream = case.operation.path.endswith("/stream")
            timeout: dict[str, Any] = {} if stream else {"timeout": READ_TIMEOUT}
            response = case.call(headers=headers, **timeout)
            case.validate_response(response, checks=[not_a_server_error])

        call()
    assert operations >= 18
