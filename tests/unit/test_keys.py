"""API key parsing, hashing and scopes (no database)."""

import pytest

from chat_ingest.config import ConfigurationError, load_settings, parse_api_keys
from chat_ingest.errors import Forbidden, InvalidInput, NotFound
from chat_ingest.service.access import OPEN_ACCESS, Caller
from chat_ingest.service.keys import checked_app_ids, grants_from_environment, hash_key, new_key

K1, K2 = "k1-0123456789abcdefghijklmn", "k2-0123456789abcdefghijklmn"


def test_api_keys_variable_parses_scopes_and_rejects_nonsense() -> None:
    assert parse_api_keys(f" {K1}=a|b , {K2}=* ,") == {
        K1: frozenset({"a", "b"}),
        K2: frozenset({"*"}),
    }
    for bad in (K1, "=a", f"{K1}=", f"{K1}=|"):
        with pytest.raises(ValueError, match="key=app1"):
            parse_api_keys(bad)


def test_short_api_keys_stop_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_KEYS", "key1=*")
    with pytest.raises(ConfigurationError, match=r"API_KEYS: .*at least 24 characters"):
        load_settings()


def test_key_scopes_follow_the_rule_for_app_ids_in_bodies() -> None:
    for padded in ("appA ", " appA", "app\x00A", "  "):
        with pytest.raises(InvalidInput):
            checked_app_ids([padded])
    assert checked_app_ids(["appA", "*"]) == frozenset({"appA", "*"})


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
