"""The web console in a real browser: Debian's Chromium driven by Playwright, against real
``chat-ingest serve`` processes on SQLite.

No browser is ever downloaded: Playwright drives ``/usr/bin/chromium`` (``make test`` installs
it where missing). Without it the browser tests skip, except under CI, where they fail.

Fixtures are package-scoped (not session-scoped) so that Playwright's own event loop never
meets pytest-asyncio's session loop.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.browser.records import seed_auth_server, seed_open_server
from tests.e2e.servers import serving

CHROMIUM = Path("/usr/bin/chromium")
SNAPSHOTS = Path(__file__).resolve().parents[2] / "build" / "console"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
# Two cores shared with database servers and other work: wait longer than the defaults.
expect.set_options(timeout=10_000)
ALPHA_KEY = "alpha-key-for-console-tests-0001"
BRAVO_KEY = "bravo-key-for-console-tests-0002"
GAMMA_KEY = "gamma-key-for-console-tests-0003"


def snapshot(page: Page, name: str) -> None:
    """Keep a picture of the page in build/console/ for a person to look at."""
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SNAPSHOTS / f"{name}.png", full_page=True)


class Service:
    """A running service: its base URL and JSON posting with the right content type."""

    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture(scope="package")
def open_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service without access control, holding the records of ``records.seed_open_server``."""
    directory = tmp_path_factory.mktemp("console-open")
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'console.db'}"}
    with serving(env, cwd=directory) as [url]:
        service = Service(url)
        seed_open_server(service.post)
        yield service


@pytest.fixture(scope="package")
def auth_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service with two keys, each for its own app."""
    directory = tmp_path_factory.mktemp("console-auth")
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'console.db'}",
        "API_KEYS": f"{ALPHA_KEY}=alpha-app,{BRAVO_KEY}=bravo-app",
    }
    with serving(env, cwd=directory) as [url]:
        service = Service(url)
        seed_auth_server(service.post, {"alpha-app": ALPHA_KEY, "bravo-app": BRAVO_KEY})
        yield service


@pytest.fixture(scope="package")
def troubled_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose database is unreachable (reads answer 503) and whose one key may make
    two requests a minute (the third answers 429)."""
    directory = tmp_path_factory.mktemp("console-troubled")
    env = {
        "DATABASE_URL": "mysql+asyncmy://root@127.0.0.1:1/unreachable",
        "AUTO_MIGRATE": "false",
        "DB_TIMEOUT": "2",
        "API_KEYS": f"{GAMMA_KEY}=gamma-app",
        "RATE_LIMIT": "2/minute",
    }
    with serving(env, cwd=directory) as [url]:
        yield Service(url)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (make test installs Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (a new tab with empty storage): UTC, English."""
    context = browser.new_context(
        locale="en-US", timezone_id="UTC", viewport={"width": 1100, "height": 900}
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
