"""Dependency aliases for routes. The app factory puts the shared objects on ``app.state``."""

from typing import Annotated

from fastapi import Depends, Request

from chat_ingest.cursors import CursorSigner
from chat_ingest.db.unit_of_work import Database
from chat_ingest.service.insert import InsertPolicy


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_insert_policy(request: Request) -> InsertPolicy:
    policy: InsertPolicy = request.app.state.insert_policy
    return policy


def get_cursor_signer(request: Request) -> CursorSigner:
    signer: CursorSigner = request.app.state.cursor_signer
    return signer


DatabaseDep = Annotated[Database, Depends(get_database)]
InsertPolicyDep = Annotated[InsertPolicy, Depends(get_insert_policy)]
CursorSignerDep = Annotated[CursorSigner, Depends(get_cursor_signer)]
