"""API key parsing, hashing and scopes (no database)."""

import pytest

from chat_ingest.config import ConfigurationError, load_settings, parse_api_keys
from chat_ingest.errors import Forbidden, InvalidInput, NotFound
from chat_ingest.service.access import OPEN_ACCESS, Caller
from chat_ingest.service.keys import checked_app_ids, grants_from_environment, hash_key, new_key


def test_api_keys_variable_parses_scopes_and_rejects_nonsense() -> None:
    assert parse_api_keys(" k1=a|b , k2=* ,") == {
        "k1": frozenset({"a", "b"}),
        "k2": frozenset({"*"}),
    }
    for bad in ("k1", "=a", "k1=", "k1=|"):
        with pytest.raises(ValueError, match="key=app1"):
            parse_api_keys(bad)


def test_a_bad_api_keys_variable_names_it_without_echoing_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_KEYS", "secret-key-without-apps")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "API_KEYS" in str(caught.value) and "secret-key" not in str(caught.value)


def test_keys_are_random_and_only_their_hash_is_kept() -> None:
    first, second = new_key(), new_key()
    assert first != second and len(first) > 40
    grants = grants_from_environment({first: frozenset({"app"})})
    (digest, grant), *_ = grants.items()
    assert digest == hash_key(first) and first not in grant.key_id


def test_caller_scopes() -> None:
    caller = Caller(key_id="k", app_ids=frozenset({"a"}))
    caller.require_app("a")
    with pytest.raises(Forbidden):
        caller.require_app("b")
    with pytest.raises(NotFound):
        caller.require_visible("b")
    OPEN_ACCESS.require_app("anything")
    with pytest.raises(InvalidInput):
        checked_app_ids([])
    with pytest.raises(InvalidInput):
        checked_app_ids(["x" * 65])
