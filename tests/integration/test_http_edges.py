"""Operational routes, request ids, body limits, and answers when the database is down."""

import time

import httpx
import pytest

from tests.conftest import ServiceClient, make_settings

pytestmark = pytest.mark.asyncio

JSON = {"content-type": "application/json"}

VALID = {"app_id": "a", "user_id": "u", "query": "q", "answer": "a"}
UNREACHABLE = {
    "mysql": "mysql+asyncmy://root@127.0.0.1:1/test",
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:1/test",
    "sqlite": "sqlite+aiosqlite:////nonexistent-dir/x/chat.db",
}


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    health = await client.get("/api/chat/health")
    assert health.json() == {"status": "healthy", "service": "chat-data-insertion"}
    assert (await client.head("/api/chat/health")).status_code == 200
    ready = await client.get("/api/chat/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "database": "ok"}


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/api/chat/health", headers={"X-Request-ID": "req-42"})
    assert echoed.headers["x-request-id"] == "req-42"
    generated = await client.post("/api/chat/insert", content=b"{", headers=JSON)
    assert len(generated.headers["x-request-id"]) == 32
    hostile = await client.get("/api/chat/health", headers={"X-Request-ID": "a b\tc" * 100})
    assert hostile.headers["x-request-id"] != "a b\tc" * 100


async def test_unknown_route_and_method_are_json_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404 and missing.json()["success"] is False
    wrong_method = await client.delete("/api/chat/insert")
    assert wrong_method.status_code == 405 and wrong_method.json()["success"] is False
    assert "x-request-id" in wrong_method.headers


async def test_body_over_limit_is_413(database_url: str) -> None:
    settings = make_settings(database_url, max_body_bytes=2048)
    big = {**VALID, "answer": "x" * 4096}
    async with ServiceClient(settings) as http:
        declared = await http.post("/api/chat/insert", json=big)
        assert declared.status_code == 413 and declared.json()["success"] is False

        async def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: streamed
            for _ in range(8):
                yield b" " * 1024

        streamed = await http.post("/api/chat/insert", content=chunks(), headers=JSON)
        assert streamed.status_code == 413
        on_a_get = await http.request("GET", "/api/chat/health", content=b" " * 4096)
        assert on_a_get.status_code == 413 and on_a_get.json()["detail"]["max_body_bytes"] == 2048
        assert "x-request-id" in on_a_get.headers
        small = await http.post("/api/chat/insert", json=VALID)
        assert small.status_code == 200


@pytest.mark.parametrize("backend_name", UNREACHABLE)
async def test_unreachable_database_is_503_quickly(backend_name: str) -> None:
    settings = make_settings(UNREACHABLE[backend_name], db_timeout=3.0)
    async with ServiceClient(settings) as http:
        started = time.monotonic()
        insert = await http.post("/api/chat/insert", json=VALID)
        assert time.monotonic() - started < 3.5  # DB_TIMEOUT bounds the answer, retries included
        assert insert.status_code == 503
        assert insert.headers["retry-after"].isdigit()
        assert insert.json()["success"] is False
        assert "127.0.0.1" not in insert.text and "Traceback" not in insert.text
        ready = await http.get("/api/chat/ready")
        assert ready.status_code == 503 and "retry-after" in ready.headers
        read = await http.get("/api/chat/some-conversation")
        assert read.status_code == 503
        health = await http.get("/api/chat/health")
        assert health.status_code == 200


async def test_openapi_documents_insert(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    insert = schema["paths"]["/api/chat/insert"]["post"]
    assert insert["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/InsertRequest"
    )
    assert {"200", "400", "409", "413", "503"} <= set(insert["responses"])
    assert "InsertRequest" in schema["components"]["schemas"]
    assert (await client.get("/docs")).status_code == 200


async def test_unexpected_error_is_a_bare_500_with_request_id(database_url: str) -> None:
    service = ServiceClient(make_settings(database_url))

    @service.app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: SELECT * FROM users; password=hunter2")

    service.http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app, raise_app_exceptions=False),
        base_url="http://service",
    )
    async with service as http:
        response = await http.get("/boom", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    assert response.json() == {"success": False, "error": "Internal server error.", "detail": None}
    assert response.headers["x-request-id"] == "trace-me"
