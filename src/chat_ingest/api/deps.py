"""Dependency aliases for routes. The app factory puts the shared objects on ``app.state``.

The getters are ``async`` on purpose: FastAPI runs plain ``def`` dependencies in a thread
pool, a thread hop per dependency per request."""

from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chat_ingest.api.ratelimit import RateLimiter
from chat_ingest.config import Settings
from chat_ingest.cursors import CursorSigner
from chat_ingest.db.unit_of_work import Database
from chat_ingest.schemas import InsertRequest
from chat_ingest.service.access import Caller, KeyRing
from chat_ingest.service.group_commit import GroupCommitter
from chat_ingest.service.insert import ItemResult
from chat_ingest.service.records import InsertPolicy

InsertCommitter = GroupCommitter[InsertRequest, ItemResult]
_bearer = HTTPBearer(auto_error=False, description="An API key from `chat-ingest keys create`.")


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_insert_policy(request: Request) -> InsertPolicy:
    policy: InsertPolicy = request.app.state.insert_policy
    return policy


async def get_group_commit(request: Request) -> InsertCommitter:
    committer: InsertCommitter = request.app.state.group_commit
    return committer


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_cursor_signer(request: Request) -> CursorSigner:
    signer: CursorSigner = request.app.state.cursor_signer
    return signer


async def get_caller(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Authenticate the bearer key (401 when required and missing or wrong), then count the
    request against the key's rate limit (429), adding the ``RateLimit-*`` headers."""
    key_ring: KeyRing = request.app.state.key_ring
    caller = await key_ring.authenticate(credentials.credentials if credentials else None)
    request.state.key_id = caller.key_id
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        client = request.client.host if request.client else "unknown"
        response.headers.update(await limiter.hit(caller.key_id or f"ip:{client}"))
    return caller


def note_app_id(request: Request, app_id: str) -> None:
    """Let the access log line name the app (the middleware reads ``scope["state"]``)."""
    request.state.app_id = app_id


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
InsertPolicyDep = Annotated[InsertPolicy, Depends(get_insert_policy)]
GroupCommitDep = Annotated[InsertCommitter, Depends(get_group_commit)]
CursorSignerDep = Annotated[CursorSigner, Depends(get_cursor_signer)]
CallerDep = Annotated[Caller, Depends(get_caller)]
