"""Operational routes: liveness (no database) and readiness (``SELECT 1``)."""

from fastapi import APIRouter

from chat_ingest.api.deps import DatabaseDep
from chat_ingest.api.openapi import ERROR_RESPONSES
from chat_ingest.schemas import HealthOut, ReadyOut
from chat_ingest.service import read as read_service

router = APIRouter(prefix="/api/chat", tags=["ops"])
SERVICE_NAME = "chat-data-insertion"


@router.get("/health", response_model=HealthOut, summary="Liveness; does not touch the database")
@router.head("/health", include_in_schema=False)
async def health() -> HealthOut:
    return HealthOut(status="healthy", service=SERVICE_NAME)


@router.get(
    "/ready",
    response_model=ReadyOut,
    summary="Readiness: 200 when the database answers SELECT 1",
    responses={503: ERROR_RESPONSES[503]},
)
@router.head("/ready", include_in_schema=False)
async def ready(database: DatabaseDep) -> ReadyOut:
    await database.run(read_service.check_database, retry=False)
    return ReadyOut(status="ready", database="ok")
