"""Every kind of invalid body is a 400 with a ``detail`` list, and writes nothing."""

import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from chat_ingest.schemas import MAX_JSON_DEPTH
from tests.conftest import unique
from tests.integration.rows import count_rows

pytestmark = pytest.mark.asyncio

JSON = {"content-type": "application/json"}

VALID = {"user_id": "u", "query": "q", "answer": "a"}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


INVALID_FIELDS: dict[str, dict[str, Any]] = {
    "missing query": {"query": None},
    "blank answer": {"answer": "   "},
    "empty user": {"user_id": ""},
    "user too long": {"user_id": "u" * 65},
    "query not a string": {"query": 123},
    "model id too long": {"model_id": "m" * 129},
    "provider too long": {"model_provider": "p" * 65},
    "currency too long": {"currency": "DOLLARS!!"},
    "name too long": {"conversation_name": "n" * 256},
    "client id too long": {"client_message_id": "c" * 65},
    "conversation id chars": {"conversation_id": "has space"},
    "conversation id too long": {"conversation_id": "c" * 37},
    "reserved health": {"conversation_id": "health"},
    "reserved ready": {"conversation_id": "ready"},
    "reserved conversations": {"conversation_id": "conversations"},
    "nul in query": {"query": "a\x00b"},
    "nul in inputs key": {"inputs": {"a\x00": 1}},
    "nul in metadata value": {"metadata": {"note": ["x\x00"]}},
    "inputs not object": {"inputs": [1, 2]},
    "metadata not object": {"metadata": "x"},
    "inputs too deep": {"inputs": nested(40)},
    "latency negative": {"metadata": {"latency": -1}},
    "latency string": {"metadata": {"latency": "1.2"}},
    "latency bool": {"metadata": {"latency": True}},
    "latency too large": {"metadata": {"latency": 1e10}},
    "tokens negative": {"message_tokens": -1},
    "tokens too large": {"answer_tokens": 2**31},
    "tokens string": {"message_tokens": "5"},
    "tokens bool": {"message_tokens": True},
    "price negative": {"total_price": -0.5},
    "price too large": {"total_price": 1e13},
    "price not a number": {"total_price": "abc"},
    "created_at garbage": {"created_at": "yesterday"},
    "files not a list": {"files": {"url": "/a"}},
    "file without url": {"files": [{"type": "image"}]},
    "file url too long": {"files": [{"url": "/" + "a" * 2048}]},
    "file bad type": {"files": [{"url": "/a", "type": "spreadsheet"}]},
    "file bad transfer": {"files": [{"url": "/a", "transfer_method": "ftp"}]},
    "file bad owner": {"files": [{"url": "/a", "belongs_to": "robot"}]},
    "file not object": {"files": ["/a"]},
    "too many files": {"files": [{"url": f"/{i}"} for i in range(101)]},
    "integer too large in inputs": {"inputs": {"n": 2**70}},
    "nested one level too deep": {"metadata": nested(MAX_JSON_DEPTH)},
    "created_at overflows when made UTC": {"created_at": "0001-01-01T00:00:00+01:00"},
    "created_at overflows the other way": {"created_at": "9999-12-31T23:59:59-14:00"},
    "client id with trailing space": {"client_message_id": "k "},
    "app id with leading space": {"app_id": " app"},
    "user id with trailing tab": {"user_id": "u\t"},
    "file path not absolute": {"files": [{"url": "relative/path.pdf"}]},
    "file url with another scheme": {"files": [{"url": "javascript:alert(1)"}]},
}


@pytest.mark.parametrize("change", INVALID_FIELDS.values(), ids=INVALID_FIELDS.keys())
async def test_invalid_field_is_400_and_writes_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, change: dict[str, Any]
) -> None:
    app_id = unique("app")
    payload = {k: v for k, v in (VALID | {"app_id": app_id} | change).items() if v is not None}
    app_id = payload["app_id"]
    response = await client.post("/api/chat/insert", content=json.dumps(payload), headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["success"] is False and error["error"].startswith("Invalid request body")
    assert error["detail"] and {"loc", "msg", "type"} <= set(error["detail"][0])
    assert error["detail"][0]["loc"][0] == "body"
    assert await count_rows(engine, app_id) == (0, 0)


MINIMAL = b'"app_id":"a","user_id":"u","query":"q","answer":"a"'
RAW_BODIES: dict[str, bytes] = {
    "empty": b"",
    "malformed": b'{"app_id": ',
    "array": b"[1, 2]",
    "string": b'"hello"',
    "null": b"null",
    "invalid utf-8": b'{"app_id": "\xff\xfe"}',
    "lone surrogate": b'{"app_id":"a","user_id":"u","query":"\\ud800","answer":"a"}',
    "infinite number": b"{" + MINIMAL + b',"inputs":{"x":1e999}}',
    "nan literal": b"{" + MINIMAL + b',"inputs":{"x":NaN}}',
    "deeply nested": b'{"inputs":' + b"[" * 5000 + b"]" * 5000 + b"}",
}


@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
async def test_malformed_body_is_400(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/api/chat/insert", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["success"] is False
    assert isinstance(response.json()["detail"], list)


async def test_valid_edge_values_are_stored_as_sent(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    app_id = "a" * 63 + "😀"
    payload = VALID | {
        "app_id": app_id,
        "user_id": "u" * 64,
        "query": "🀄️ 𠜎 emoji and 4-byte characters",
        "client_message_id": "c" * 64,
        "conversation_id": "C" * 36,
        "conversation_name": "名" * 255,
        "inputs": {"键": ["值", {"深": nested(20)}], "n": 2**62, "f": -1.5},
        "metadata": nested(MAX_JSON_DEPTH - 1),  # the deepest document allowed
    }
    response = await client.post("/api/chat/insert", json=payload)
    assert response.status_code == 200, response.text
    assert await count_rows(engine, app_id) == (1, 1)


@pytest.mark.parametrize(
    "big",
    [{"query": "q" * 8_400_000}, {"metadata": {"quotes": "'" * 8_400_000}}],
    ids=["query stored twice", "metadata escaped"],
)
async def test_record_too_large_for_mysql_packet_is_413(
    client: httpx.AsyncClient, engine: AsyncEngine, backend: str, big: dict[str, Any]
) -> None:
    """MariaDB's default max_allowed_packet is 16 MiB; the query is stored twice (also in
    ``message``) and quotes are escaped: there these records cannot be written, elsewhere
    they can."""
    app_id = unique("app")
    payload = VALID | {"app_id": app_id} | big
    response = await client.post("/api/chat/insert", json=payload)
    if backend == "mysql":
        assert response.status_code == 413, response.text
        assert response.json()["detail"]["max_allowed_packet"] > 0
        assert await count_rows(engine, app_id) == (0, 0)
    else:
        assert response.status_code == 200
        assert await count_rows(engine, app_id) == (1, 1)


async def test_batch_items_get_the_same_verdicts(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    app_id = unique("app")
    items = [
        {k: v for k, v in (VALID | {"app_id": app_id} | change).items() if v is not None}
        for change in INVALID_FIELDS.values()
    ]
    valid = VALID | {"app_id": app_id}
    response = await client.post(
        "/api/chat/insert/batch", content=json.dumps({"items": [*items, valid]}), headers=JSON
    )
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == [400] * len(items) + [200]
    assert await count_rows(engine, app_id) == (1, 1)
