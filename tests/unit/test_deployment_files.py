"""The Dockerfile and docker-compose.yml agree with the code (no Docker engine runs here, so
the files are read, not built): port, settings' variable names, health route, MySQL setup."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from chat_ingest.api.app import create_app
from chat_ingest.api.routes import ops
from chat_ingest.config import Settings

ROOT = Path(__file__).resolve().parents[2]
_DEFAULTED_VARIABLE = re.compile(r"\$\{(\w+):-([^}]*)\}")


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    pairs = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def _with_defaults(value: str) -> str:
    """Compose's ``${NAME:-default}`` as compose resolves it when NAME is unset."""
    return _DEFAULTED_VARIABLE.sub(lambda match: match.group(2), value)


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _instructions((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def _service_environment(compose: dict[str, Any]) -> dict[str, str]:
    environment = compose["services"]["chat-ingest"]["environment"]
    return {name: _with_defaults(str(value)) for name, value in environment.items()}


def _health_path() -> str:
    return str(create_app(Settings()).url_path_for(ops.health.__name__))


DEFAULT_PORT = Settings.model_fields["api_port"].default


def test_dockerfile_is_multi_stage_locked_non_root_and_healthchecked(
    dockerfile: list[tuple[str, str]],
) -> None:
    by_name: dict[str, list[str]] = {}
    for name, arguments in dockerfile:
        by_name.setdefault(name, []).append(arguments)
    assert len(by_name["FROM"]) >= 2 and all("python:3.1" in f for f in by_name["FROM"])
    assert any("uv sync --frozen --no-dev" in run for run in by_name["RUN"])
    assert by_name["USER"][-1] not in ("root", "0")
    assert by_name["EXPOSE"] == [str(DEFAULT_PORT)]
    assert _health_path() in by_name["HEALTHCHECK"][0] and "urllib" in by_name["HEALTHCHECK"][0]
    command = " ".join(by_name["CMD"][-1:])
    assert "chat-ingest" in command and "serve" in command and "--reload" not in command


def test_compose_service_uses_only_real_settings_and_the_code_port(
    compose: dict[str, Any],
) -> None:
    environment = _service_environment(compose)
    known = {name.upper() for name in Settings.model_fields}
    assert set(environment) <= known, set(environment) - known
    Settings(**{name.lower(): value for name, value in environment.items()})  # values valid
    service = compose["services"]["chat-ingest"]
    assert service["ports"] == [f"{DEFAULT_PORT}:{environment['API_PORT']}"]
    assert int(environment["API_PORT"]) == DEFAULT_PORT
    assert "command" not in service  # the image's CMD: `chat-ingest serve`
    grace = int(service["stop_grace_period"].removesuffix("s"))
    assert grace > 30  # serve's timeout_graceful_shutdown


def test_compose_mysql_matches_the_service_database_url(compose: dict[str, Any]) -> None:
    url = make_url(_service_environment(compose)["DATABASE_URL"])
    mysql = compose["services"]["mysql"]
    mysql_env = {name: _with_defaults(str(value)) for name, value in mysql["environment"].items()}
    assert mysql["image"] == "mysql:8.4"
    assert url.host in compose["services"] and url.port == 3306
    assert (url.database, url.username, url.password) == (
        mysql_env["MYSQL_DATABASE"],
        mysql_env["MYSQL_USER"],
        mysql_env["MYSQL_PASSWORD"],
    )
    arguments = " ".join(mysql["command"])
    assert "--character-set-server=utf8mb4" in arguments
    assert "default-authentication-plugin" not in arguments  # removed in MySQL 8.4
    assert any(volume.endswith(":/var/lib/mysql") for volume in mysql["volumes"])
    assert compose["services"]["chat-ingest"]["depends_on"]["mysql"]["condition"] == (
        "service_healthy"
    )


def test_readme_tells_how_to_start_the_containers() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up" in readme and "docs/deploy.md" in readme
