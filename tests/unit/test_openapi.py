"""/openapi.json documents what each route answers: its response model and its errors."""

from pathlib import Path

from chat_ingest.api.app import create_app
from tests.conftest import make_settings

EXPECTED_ERRORS = {
    ("get", "/api/chat/conversations"): {"400", "503"},
    ("get", "/api/chat/{conversation_id}"): {"400", "404", "503"},
    ("get", "/api/chat/{conversation_id}/messages"): {"400", "404", "503"},
    ("post", "/api/chat/insert"): {"400", "409", "413", "503"},
}


def test_read_routes_declare_models_and_errors(tmp_path: Path) -> None:
    schema = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")).openapi()
    for (method, path), errors in EXPECTED_ERRORS.items():
        responses = schema["paths"][path][method]["responses"]
        assert errors <= set(responses), (path, sorted(responses))
        for status in errors:
            error_schema = responses[status]["content"]["application/json"]["schema"]
            assert error_schema == {"$ref": "#/components/schemas/ErrorOut"}
        assert "$ref" in responses["200"]["content"]["application/json"]["schema"]
    components = schema["components"]["schemas"]
    page = components["Page_MessageOut_"]["properties"]
    assert set(page) == {"data", "has_more", "next_cursor"}
    listing = schema["paths"]["/api/chat/conversations"]["get"]["parameters"]
    limit = next(p for p in listing if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 100)
