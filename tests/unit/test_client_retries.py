"""The client's retry policy, against scripted HTTP answers (no service involved)."""

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from chat_ingest.client import (
    AsyncChatIngestClient,
    ChatIngestClient,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
    ValidationError,
)
from chat_ingest.client._calls import RetryPolicy
from chat_ingest.client._errors import error_from_response

INSERTED = {
    "success": True,
    "conversation_id": "c",
    "message_id": "m",
    "error": None,
    "created": True,
    "conversation_created": True,
}


class Script:
    """Answers requests in order from ``answers``; remembers every body it received."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content or b"null"))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def error(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"success": False, "error": f"status {status}", "detail": None}
    return httpx.Response(status, json=body, headers=headers)


def client(script: Script, max_retries: int = 3) -> ChatIngestClient:
    transport = httpx.MockTransport(script)
    return ChatIngestClient(
        "http://svc", max_retries=max_retries, backoff=0.001, transport=transport
    )


def test_retries_resend_the_same_body_with_generated_ids() -> None:
    script = Script(
        httpx.ConnectError("refused"),
        error(503, {"Retry-After": "0"}),
        httpx.RemoteProtocolError("closed after the request was sent"),
        httpx.Response(200, json=INSERTED),
    )
    result = client(script).insert(app_id="a", user_id="u", query="q", answer="a")
    assert result.message_id == "m"
    assert len(script.bodies) == 4
    first = script.bodies[0]
    assert all(body == first for body in script.bodies)
    assert len(first["client_message_id"]) == 36 and len(first["conversation_id"]) == 36


def test_given_ids_are_kept() -> None:
    script = Script(httpx.Response(200, json=INSERTED))
    client(script).insert(
        app_id="a", user_id="u", query="q", answer="a", conversation_id="c-1", client_message_id="k"
    )
    assert script.bodies[0]["conversation_id"] == "c-1"
    assert script.bodies[0]["client_message_id"] == "k"


@pytest.mark.parametrize(
    ("status", "exception"),
    [(400, ValidationError), (404, NotFoundError), (409, ConflictError), (500, ServerError)],
)
def test_other_errors_are_raised_at_once(status: int, exception: type[Exception]) -> None:
    script = Script(error(status), httpx.Response(200, json=INSERTED))
    with pytest.raises(exception) as raised:
        client(script).insert(app_id="a", user_id="u", query="q", answer="a")
    assert len(script.bodies) == 1
    assert raised.value.status == status and raised.value.error == f"status {status}"


@pytest.mark.parametrize(
    ("answers", "exception"),
    [
        (lambda: httpx.ConnectError("refused"), TransportError),
        (lambda: error(429, {"Retry-After": "0"}), RateLimitedError),
        (lambda: error(503), ServiceUnavailableError),
    ],
)
def test_gives_up_after_max_retries(
    answers: Callable[[], httpx.Response | Exception], exception: type[Exception]
) -> None:
    script = Script(*(answers() for _ in range(3)))
    with pytest.raises(exception):
        client(script, max_retries=2).get_conversation("c")
    assert len(script.bodies) == 3


def test_retry_after_is_honoured() -> None:
    policy = RetryPolicy(max_retries=3, backoff=1.0)
    limited = error_from_response(error(429, {"Retry-After": "7"}))
    assert policy.delay(0, limited) == 7
    dated = error(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert policy.delay(0, error_from_response(dated)) == 0
    unavailable = error_from_response(error(503))
    delays = [policy.delay(attempt, unavailable) for attempt in range(3)]
    assert [0.5 <= d / 2**n <= 1.0 for n, d in enumerate(delays) if d is not None] == [True] * 3
    assert policy.delay(3, unavailable) is None
    assert policy.delay(0, error_from_response(error(400))) is None


@pytest.mark.asyncio
async def test_async_client_retries_the_same_way() -> None:
    script = Script(httpx.ReadTimeout("slow"), httpx.Response(200, json=INSERTED))

    async def handler(request: httpx.Request) -> httpx.Response:
        return script(request)

    async with AsyncChatIngestClient(
        "http://svc", backoff=0.001, transport=httpx.MockTransport(handler)
    ) as async_client:
        result = await async_client.insert(app_id="a", user_id="u", query="q", answer="a")
    assert result.created is True and len(script.bodies) == 2
    assert script.bodies[0] == script.bodies[1]
