"""Dependency aliases for routes. The app factory puts the shared objects on ``app.state``.

The getters are ``async`` on purpose: FastAPI runs plain ``def`` dependencies in a thread
pool, a thread hop per dependency per request."""

from typing import Annotated

from fastapi import Depends, Request

from chat_ingest.config import Settings
from chat_ingest.cursors import CursorSigner
from chat_ingest.db.unit_of_work import Database
from chat_ingest.service.records import InsertPolicy


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_insert_policy(request: Request) -> InsertPolicy:
    policy: InsertPolicy = request.app.state.insert_policy
    return policy


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_cursor_signer(request: Request) -> CursorSigner:
    signer: CursorSigner = request.app.state.cursor_signer
    return signer


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
InsertPolicyDep = Annotated[InsertPolicy, Depends(get_insert_policy)]
CursorSignerDep = Annotated[CursorSigner, Depends(get_cursor_signer)]
