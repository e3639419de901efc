"""OpenAPI pieces for routes that read their JSON body themselves (see routes/insert.py)."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from chat_ingest.schemas import ErrorOut

REF_TEMPLATE = "#/components/schemas/{model}"
_raw_body_models: list[type[BaseModel]] = []

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "Invalid body or parameters; `detail` lists `{loc, msg, type}`.",
        401: "API key missing, unknown or revoked (when access control is on).",
        403: "The API key may not use this app_id.",
        404: "Not found.",
        409: "Conflict with stored data.",
        413: "Body larger than MAX_BODY_BYTES.",
        429: "Rate limit exceeded; retry after `Retry-After` seconds.",
        503: "Database unavailable; retry after `Retry-After` seconds.",
    }.items()
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entries of the errors a route can answer."""
    return {status: ERROR_RESPONSES[status] for status in statuses}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the route's required JSON body."""
    _raw_body_models.append(model)
    schema = {"$ref": REF_TEMPLATE.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def install_openapi(app: FastAPI) -> None:
    """Build the schema once, adding the raw-body models to ``components.schemas``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in _raw_body_models:
                model_schema = model.model_json_schema(ref_template=REF_TEMPLATE)
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            _drop_unused_422(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_unused_422(schema: dict[str, Any]) -> None:
    """FastAPI documents 422 for every validated route; this service answers 400 instead."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
