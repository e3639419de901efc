"""Schemathesis against the service's own /openapi.json, in-process (no server): every route,
positive and negative cases from a fixed seed; no 5xx, and every response conforms to what the
schema declares (status codes, content types, headers, bodies).

Two checks are left out. ``ignored_auth`` sends its own probes over the network (and
test_access.py covers authentication). ``positive_data_acceptance`` expects every schema-valid
body to be stored, but SPEC's rules go beyond JSON Schema (text a backend cannot store, the
backend's timestamp range, JSON nesting depth, reserved ids): those are 400s by contract, and
``negative_data_rejection`` still checks that what the schema forbids is refused.
"""

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.conftest import ServiceClient, make_settings

pytestmark = pytest.mark.asyncio
EXAMPLES_PER_OPERATION_AND_MODE = 25
SEED = 20261124
KEY = "fuzzing-key-with-access-to-every-app"
AUTH = {"Authorization": f"Bearer {KEY}"}
EXCLUDED_CHECKS = [ignored_auth, positive_data_acceptance]


def _cases(schema: Any) -> list[Case]:
    """Draw the cases up front (Hypothesis is synchronous), then send them on this loop."""
    cases: list[Case] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @seed(SEED)
            @settings(
                max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def collect(case: Case) -> None:
                cases.append(case)

            try:
                collect()
            except Unsatisfiable:  # nothing to break in a route without inputs
                if mode is GenerationMode.POSITIVE:
                    raise
    return cases


async def _send(http: httpx.AsyncClient, case: Case) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url=str(http.base_url), headers=AUTH)
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")
    kwargs.pop("cookies", None)
    return await http.request(**kwargs)


async def test_fuzzing_finds_no_server_errors_and_no_schema_violations(database_url: str) -> None:
    async with ServiceClient(make_settings(database_url, api_keys=f"{KEY}=*")) as http:
        schema = schemathesis.openapi.from_dict((await http.get("/openapi.json")).json())
        cases = _cases(schema)
        problems = []
        for case in cases:
            response = await _send(http, case)
            try:
                case.validate_response(response, headers=AUTH, excluded_checks=EXCLUDED_CHECKS)
            except AssertionError as failure:
                problems.append(f"{case.operation.label} -> {response.status_code}: {failure}")
    assert len(cases) >= 80, len(cases)
    assert problems == []
