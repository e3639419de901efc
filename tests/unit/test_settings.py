"""Settings that decide how instances cooperate and what a deployment trusts."""

from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from chat_ingest import cli
from chat_ingest.config import Settings


def test_instances_agree_on_the_cursor_key_however_their_urls_are_spelled() -> None:
    spellings = [
        "mysql+asyncmy://root@127.0.0.1:3306/chat",
        "mysql+aiomysql://ingest:old-password@db.internal/chat?charset=utf8mb4",
        "mariadb+asyncmy://ingest:new-password@10.0.0.5:3306/chat",
    ]
    keys = {Settings(database_url=url).cursor_key for url in spellings}
    assert len(keys) == 1
    other_database = Settings(database_url="mysql+asyncmy://root@127.0.0.1/other").cursor_key
    assert other_database not in keys
    shared = {Settings(database_url=url, cursor_secret="s" * 32).cursor_key for url in spellings}
    assert len(shared) == 1 and shared != keys


def test_serve_trusts_no_proxy_by_default_and_bounds_concurrency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``serve`` hands uvicorn (the server itself is exercised end to end elsewhere)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("AUTO_MIGRATE", "false")
    monkeypatch.setenv("API_LIMIT_CONCURRENCY", "77")
    assert CliRunner().invoke(cli.app, ["serve"]).exit_code == 0
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.2")
    assert CliRunner().invoke(cli.app, ["serve"]).exit_code == 0
    default, behind_proxy = calls
    assert default["proxy_headers"] is False and default["limit_concurrency"] == 77
    assert behind_proxy["proxy_headers"] is True
    assert behind_proxy["forwarded_allow_ips"] == "10.0.0.2"
