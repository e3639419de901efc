"""How many worker processes ``serve`` starts by default."""

import os

import pytest

from chat_ingest.config import MAX_DEFAULT_WORKERS, Settings

SERVER_URL = "mysql+asyncmy://u@db:3306/chat"


def test_api_workers_wins_when_set() -> None:
    assert Settings(database_url=SERVER_URL, api_workers=3).workers == 3


def test_one_worker_per_usable_core_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_WORKERS", raising=False)
    for cores, expected in ((1, 1), (2, 2), (MAX_DEFAULT_WORKERS + 4, MAX_DEFAULT_WORKERS)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert Settings(database_url=SERVER_URL).workers == expected


def test_sqlite_always_gets_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    assert Settings(database_url="sqlite+aiosqlite:///./x.db").workers == 1
