"""End-to-end fixtures: no server a test started outlives the session, even when it failed."""

from collections.abc import Iterator

import pytest

from tests.e2e.servers import stop_all


@pytest.fixture(scope="session", autouse=True)
def _stop_leftover_servers() -> Iterator[None]:
    yield
    stop_all()
