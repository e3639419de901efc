"""Metrics grow with inserts; the access log names route, status and app but never chat text,
file URLs or keys; start-up names the database without its password."""

import io
import logging
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chat_ingest.log_setup import JsonFormatter, TextFormatter
from tests.conftest import ServiceClient, make_settings, unique

pytestmark = pytest.mark.asyncio
INSERT_ROUTE = {"method": "POST", "route": "/api/chat/insert", "status": "200"}


async def _metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def test_metrics_count_inserts_errors_and_routes(client: httpx.AsyncClient) -> None:
    names = ("chat_insert_total", "chat_insert_success_total", "chat_insert_errors_total")
    before = [await _metric(client, name) for name in names]
    route_before = await _metric(client, "chat_http_requests_total", **INSERT_ROUTE)
    body = {"app_id": unique("app"), "user_id": "u", "query": "q", "answer": "a"}
    assert (await client.post("/api/chat/insert", json=body)).status_code == 200
    assert (await client.post("/api/chat/insert", json=body | {"query": ""})).status_code == 400
    after = [await _metric(client, name) for name in names]
    assert [b - a for a, b in zip(before, after, strict=True)] == [2, 1, 1]
    assert await _metric(client, "chat_http_requests_total", **INSERT_ROUTE) == route_before + 1
    assert await _metric(client, "chat_active_conversations") >= 1
    assert await _metric(client, "chat_insert_duration_seconds_count") >= 2


async def test_route_labels_are_templates_not_paths(client: httpx.AsyncClient) -> None:
    conversation_id = unique("conv")
    await client.get(f"/api/chat/{conversation_id}")
    text = (await client.get("/metrics")).text
    assert 'route="/api/chat/{conversation_id}"' in text and conversation_id not in text


async def test_metrics_can_be_switched_off(database_url: str) -> None:
    async with ServiceClient(make_settings(database_url, metrics_enabled=False)) as http:
        assert (await http.get("/metrics")).status_code == 404


@pytest.fixture(params=[JsonFormatter, TextFormatter])
def log_output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Everything logged while the test runs, formatted as the service formats it."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(request.param())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(old_level)


async def test_logs_never_carry_chat_text_file_urls_or_keys(
    database_url: str, log_output: io.StringIO
) -> None:
    key = "sk-live-SECRETKEY-0123456789"
    secrets = ("SECRET-QUESTION-42", "SECRET-ANSWER-42", "SECRET-SIGNATURE", key, key[::-1])
    app_id = unique("app")
    body = {
        "app_id": app_id,
        "user_id": "u",
        "query": "my password is SECRET-QUESTION-42",
        "answer": "SECRET-ANSWER-42",
        "files": [{"url": "https://files.example/a.pdf?token=SECRET-SIGNATURE"}],
    }
    settings = make_settings(database_url, api_keys=f"{key}={app_id}")
    async with ServiceClient(settings) as http:
        auth = {"Authorization": f"Bearer {key}"}
        assert (await http.post("/api/chat/insert", json=body, headers=auth)).status_code == 200
        await http.post("/api/chat/insert", json=body | {"user_id": ""}, headers=auth)
        await http.post(
            "/api/chat/insert", json=body, headers={"Authorization": "Bearer " + key[::-1]}
        )
    logged = log_output.getvalue()
    assert all(secret not in logged for secret in secrets)
    access = [line for line in logged.splitlines() if "chat_ingest.access" in line]
    assert len(access) == 3 and app_id in access[0]
    assert "200" in access[0] and "400" in access[1] and "401" in access[2]
    assert "request_id" in access[0] and "latency_ms" in access[0]


async def test_start_up_names_the_database_without_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "postgresql+asyncpg://chat:hunter2-password@127.0.0.1:1/chat"
    with caplog.at_level(logging.INFO, logger="chat_ingest"):
        async with ServiceClient(make_settings(url, db_timeout=0.5)):
            pass
    start = next(record for record in caplog.records if record.getMessage() == "starting")
    assert start.__dict__["database_backend"] == "postgresql"
    assert start.__dict__["database_host"] == "127.0.0.1:1"
    assert all("hunter2" not in record.getMessage() for record in caplog.records)
    assert "hunter2" not in caplog.text
