"""The holes a hostile pass found, each closed on every backend: cross-site content types,
padded or NUL ids in query parameters, forged cursors, guessing keys, counting every insert."""

import base64
import logging
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.cursors import CursorSigner
from tests.conftest import ServiceClient, make_settings, unique
from tests.integration.rows import count_rows

pytestmark = pytest.mark.asyncio

KEY = "hardening-key-0123456789abcdef"
UNREACHABLE = "sqlite+aiosqlite:////nonexistent-dir/x/chat.db"


def _body(app_id: str, **fields: Any) -> dict[str, Any]:
    return {"app_id": app_id, "user_id": "u", "query": "q", "answer": "a"} | fields


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {},
        {"content-type": "application/json", "content-encoding": "gzip"},
    ],
    ids=["text-plain", "form", "no-type", "gzip-labelled"],
)
async def test_only_uncompressed_json_bodies_are_read(
    client: httpx.AsyncClient, engine: AsyncEngine, headers: dict[str, str]
) -> None:
    app_id = unique("app")
    for path, body in (
        ("/api/chat/insert", _body(app_id)),
        ("/api/chat/insert/batch", {"items": [_body(app_id)]}),
    ):
        response = await client.post(path, content=orjson.dumps(body), headers=headers)
        assert response.status_code == 415, response.text
        assert response.json()["success"] is False
    assert await count_rows(engine, app_id) == (0, 0)
    labelled = {"content-type": "application/json; charset=utf-8"}
    accepted = await client.post(
        "/api/chat/insert", content=orjson.dumps(_body(app_id)), headers=labelled
    )
    assert accepted.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"app_id": "appA "},
        {"app_id": " appA"},
        {"app_id": "app\x00A"},
        {"app_id": "appA", "user_id": "u\x00"},
        {"app_id": "appA", "user_id": "u "},
        {"app_id": "appA", "user_id": " "},
    ],
    ids=["trailing-space", "leading-space", "nul", "user-nul", "user-padded", "user-blank"],
)
async def test_listing_ids_follow_the_rules_of_insert_bodies(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/api/chat/conversations", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"][0] == "query"


async def test_a_padded_app_id_does_not_pass_a_key_scoped_to_the_app(database_url: str) -> None:
    app_id = unique("app")
    settings = make_settings(database_url, api_keys=f"{KEY}={app_id}")
    auth = {"Authorization": f"Bearer {KEY}"}
    async with ServiceClient(settings) as http:
        assert (await http.post("/api/chat/insert", json=_body(app_id), headers=auth)).is_success
        padded = await http.get(
            "/api/chat/conversations", params={"app_id": f"{app_id} "}, headers=auth
        )
        assert padded.status_code == 400
        exact = await http.get("/api/chat/conversations", params={"app_id": app_id}, headers=auth)
        assert exact.status_code == 200 and len(exact.json()["data"]) == 1


def _forged(signer: CursorSigner, scope: str, payload: bytes) -> str:
    """A cursor signed with the right key but carrying a payload the service never issues."""

    def encode(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{encode(payload)}.{encode(signer._signature(scope, payload))}"


@pytest.mark.parametrize(
    "payload",
    [b'"x"', b'["yesterday","x"]', b"[1,2,3]", b'["2024-01-01T00:00:00",1]', b"{}", b"not json"],
)
async def test_a_cursor_whose_payload_does_not_parse_is_400(
    client: httpx.AsyncClient, database_url: str, payload: bytes
) -> None:
    app_id = unique("app")
    signer = CursorSigner(make_settings(database_url).cursor_key)
    for path, scope in (
        ("/api/chat/conversations", orjson.dumps(["conversations", app_id, None]).decode()),
        (f"/api/chat/{app_id}/messages", orjson.dumps(["messages", app_id]).decode()),
    ):
        params = {"app_id": app_id, "cursor": _forged(signer, scope, payload)}
        response = await client.get(path, params=params)
        assert response.status_code in (400, 404), response.text
        if path.endswith("conversations"):
            assert response.status_code == 400


async def test_head_on_ready_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.head("/api/chat/ready")).status_code == 200
    assert (await client.head("/metrics")).status_code == 200


async def test_a_rate_limited_request_that_ends_in_400_still_reports_its_budget(
    database_url: str,
) -> None:
    settings = make_settings(database_url, rate_limit="100/hour", api_keys=f"{KEY}=*")
    auth = {"Authorization": f"Bearer {KEY}"}
    async with ServiceClient(settings) as http:
        bad = await http.post("/api/chat/insert", json={"app_id": ""}, headers=auth)
        assert bad.status_code == 400
        assert bad.headers["ratelimit-limit"] == "100"
        assert bad.headers["ratelimit-remaining"] == "99"


async def test_repeated_failed_authentications_from_one_address_are_429(
    database_url: str,
) -> None:
    settings = make_settings(database_url, api_keys=f"{KEY}=*", auth_failure_limit="3/minute")
    async with ServiceClient(settings) as http:
        body = _body(unique("app"))
        good = {"Authorization": f"Bearer {KEY}"}
        assert (await http.post("/api/chat/insert", json=body, headers=good)).status_code == 200
        for attempt in range(3):
            guess = {"Authorization": f"Bearer guess-{attempt:030d}"}
            assert (
                await http.post("/api/chat/insert", json=body, headers=guess)
            ).status_code == 401
        other_guess = {"Authorization": f"Bearer guess-{9:030d}"}
        blocked = await http.post("/api/chat/insert", json=body, headers=other_guess)
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        # While the address is blocked, even the right key is not checked: no guessing at all.
        assert (await http.post("/api/chat/insert", json=body, headers=good)).status_code == 429


def _inserts() -> tuple[float, float, float]:
    def value(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    return (
        value("chat_insert_total"),
        value("chat_insert_success_total"),
        value("chat_insert_errors_total"),
    )


def _delta(before: tuple[float, float, float]) -> tuple[float, float, float]:
    after = _inserts()
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


async def test_every_insert_outcome_is_counted_once_even_in_an_outage() -> None:
    """Without keys the key ring reads the database before the insert itself: an outage
    fails there, and must still count."""
    async with ServiceClient(make_settings(UNREACHABLE, db_timeout=1.0)) as http:
        before = _inserts()
        single = await http.post("/api/chat/insert", json=_body("a"))
        assert single.status_code == 503 and single.headers["retry-after"]
        assert _delta(before) == (1, 0, 1)
        before = _inserts()
        batch = await http.post("/api/chat/insert/batch", json={"items": [_body("a")] * 3})
        assert batch.status_code == 503
        assert _delta(before) == (1, 0, 1)  # refused before its body was read: one request


async def test_a_batch_is_counted_item_by_item(client: httpx.AsyncClient) -> None:
    app_id = unique("app")
    before = _inserts()
    items = [_body(app_id), _body(app_id, user_id=""), _body(app_id)]
    response = await client.post("/api/chat/insert/batch", json={"items": items})
    assert response.status_code == 200 and response.json()["failed"] == 1
    assert _delta(before) == (3, 2, 1)
    before = _inserts()
    assert (await client.post("/api/chat/insert/batch", json={"items": []})).status_code == 400
    assert _delta(before) == (1, 0, 1)


async def test_a_protocol_relative_file_url_is_not_a_path(client: httpx.AsyncClient) -> None:
    for url in ("//evil.example/x", "/\\evil.example/x"):
        body = _body(unique("app"), files=[{"url": url}])
        response = await client.post("/api/chat/insert", json=body)
        assert response.status_code == 400, url
    ok = _body(unique("app"), files=[{"url": "/srv/files/a.pdf"}])
    assert (await client.post("/api/chat/insert", json=ok)).status_code == 200


async def test_length_errors_speak_of_characters(client: httpx.AsyncClient) -> None:
    body = _body(unique("app"), files=[{"url": "/" + "x" * 3000}])
    response = await client.post("/api/chat/insert", json=body)
    assert response.status_code == 400
    assert response.json()["detail"][0]["msg"] == "String should have at most 2048 characters"


async def test_negative_zero_is_stored_and_read_as_zero(client: httpx.AsyncClient) -> None:
    app_id, conversation_id = unique("app"), unique("conv")
    body = _body(app_id, conversation_id=conversation_id, total_price=-0.0)
    body["metadata"] = {"latency": -0.0}
    assert (await client.post("/api/chat/insert", json=body)).status_code == 200
    [message] = (await client.get(f"/api/chat/{conversation_id}/messages")).json()["data"]
    assert not message["total_price"].startswith("-")
    assert not message["provider_response_latency"].startswith("-")


async def test_the_access_log_names_the_docs_pages(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="chat_ingest.access"):
        assert (await client.get("/docs")).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200
    routes = [
        record.__dict__.get("route")
        for record in caplog.records
        if record.name == "chat_ingest.access"
    ]
    assert routes[-2:] == ["/docs", "/openapi.json"]
