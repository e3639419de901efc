"""Dependency aliases for routes. The app factory puts the shared objects on ``app.state``."""

from typing import Annotated

from fastapi import Depends, Request

from chat_ingest.config import Settings
from chat_ingest.db.unit_of_work import Database
from chat_ingest.service.records import InsertPolicy


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_insert_policy(request: Request) -> InsertPolicy:
    policy: InsertPolicy = request.app.state.insert_policy
    return policy


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
InsertPolicyDep = Annotated[InsertPolicy, Depends(get_insert_policy)]
