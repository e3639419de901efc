"""Dependency aliases for routes. The app factory puts the shared objects on ``app.state``.

The getters are ``async`` on purpose: FastAPI runs plain ``def`` dependencies in a thread
pool, a thread hop per dependency per request."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chat_ingest import metrics
from chat_ingest.api.ratelimit import RateLimiter, RateLimitExceeded
from chat_ingest.config import Settings
from chat_ingest.cursors import CursorSigner
from chat_ingest.db.unit_of_work import Database
from chat_ingest.errors import Unauthenticated, UnsupportedMediaType
from chat_ingest.service.access import Caller, KeyRing
from chat_ingest.service.insert import SingleInserts
from chat_ingest.service.records import InsertPolicy
from chat_ingest.stores.base import Store

_bearer = HTTPBearer(auto_error=False, description="An API key from `chat-ingest keys create`.")


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_single_inserts(request: Request) -> SingleInserts:
    inserts: SingleInserts = request.app.state.single_inserts
    return inserts


async def get_insert_policy(request: Request) -> InsertPolicy:
    policy: InsertPolicy = request.app.state.insert_policy
    return policy


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_cursor_signer(request: Request) -> CursorSigner:
    signer: CursorSigner = request.app.state.cursor_signer
    return signer


async def count_inserts() -> AsyncIterator[metrics.InsertCount]:
    """Every insert request's outcome counted once, whatever ends it: a 200, a failed item, a
    400, a 401, a 503 from the key ring or the write, a client gone mid-body. Declared first
    among a route's dependencies, so that failures of the others are counted too."""
    count = metrics.InsertCount()
    try:
        yield count
    except BaseException:
        count.fail_unsettled()
        raise
    finally:
        count.record()


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Authenticate the bearer key (401 when required and missing or wrong; 429 for an
    address that failed too often), then count the request against the key's rate limit
    (429); the ``RateLimit-*`` headers go on whatever response the request ends with."""
    client = f"ip:{request.client.host if request.client else 'unknown'}"
    key = credentials.credentials if credentials else None
    # Only requests that present a key can guess one: the others skip the failure budget.
    failures: RateLimiter | None = request.app.state.auth_failure_limiter if key else None
    if failures is not None:
        await failures.check(client)
    key_ring: KeyRing = request.app.state.key_ring
    try:
        caller = await key_ring.authenticate(key)
    except Unauthenticated:
        if failures is not None:
            await failures.hit_quietly(client)
        raise
    request.state.key_id = caller.key_id
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        try:
            request.state.rate_limit_headers = await limiter.hit(caller.key_id or client)
        except RateLimitExceeded as exc:
            request.state.rate_limit_headers = exc.headers
            raise
    return caller


async def json_body(request: Request) -> bytes:
    """The raw body of a JSON request. Only ``application/json`` is read, so that no web page
    can write records cross-site with a "simple" (text/plain or form) request; compressed
    bodies are refused rather than misread."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            "The request body must be JSON sent with 'Content-Type: application/json'.",
            detail={"content_type": media_type or None},
        )
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            "Compressed request bodies are not accepted; send the JSON uncompressed.",
            detail={"content_encoding": encoding},
        )
    return await request.body()


def note_app_id(request: Request, app_id: str) -> None:
    """Let the access log line name the app (the middleware reads ``scope["state"]``)."""
    request.state.app_id = app_id


DatabaseDep = Annotated[Database, Depends(get_database)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
InsertPolicyDep = Annotated[InsertPolicy, Depends(get_insert_policy)]
SingleInsertsDep = Annotated[SingleInserts, Depends(get_single_inserts)]
CursorSignerDep = Annotated[CursorSigner, Depends(get_cursor_signer)]
CallerDep = Annotated[Caller, Depends(get_caller)]
InsertCountDep = Annotated[metrics.InsertCount, Depends(count_inserts, scope="function")]
JsonBodyDep = Annotated[bytes, Depends(json_body)]
