"""Pure rules: token estimation, pricing, timestamps, error classification, settings."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy.exc import OperationalError

from chat_ingest.config import ConfigurationError, load_settings
from chat_ingest.db.unit_of_work import is_transient
from chat_ingest.ids import new_id
from chat_ingest.pricing import estimate_tokens, price
from chat_ingest.schemas import utc_timestamp


def test_estimate_tokens_follows_the_design() -> None:
    assert estimate_tokens("你好世界") == 6  # 4 Chinese characters x 1.5
    assert estimate_tokens("hello big world") == 3  # int(3 x 1.3)
    assert estimate_tokens("机器学习 is fun") == int(4 * 1.5 + 2 * 1.3)
    assert estimate_tokens("123 !!") == 0


def test_price_is_rounded_to_six_places() -> None:
    assert price(1500, Decimal("0.002")) == Decimal("0.003000")
    assert price(1, Decimal("0.0000015")) == Decimal("0.000000")
    assert price(1, Decimal("0.0005")) == Decimal("0.000001")  # half up


def test_utc_timestamp() -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5, 678)
    assert utc_timestamp(naive) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    shanghai = datetime(2024, 1, 2, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    assert utc_timestamp(shanghai) == datetime(2024, 1, 2, 0, 0, tzinfo=UTC)
    assert utc_timestamp(None).tzinfo == UTC


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(1000)]
    assert all(len(i) == 36 and i[14] == "7" for i in ids)
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OperationalError("stmt", {}, Exception(1213, "Deadlock found")), True),
        (OperationalError("stmt", {}, Exception(1205, "Lock wait timeout")), True),
        (OperationalError("stmt", {}, Exception(2013, "Lost connection")), True),
        (OperationalError("stmt", {}, Exception(1062, "Duplicate entry")), False),
        (OperationalError("stmt", {}, Exception(1406, "Data too long")), False),
        (OperationalError("stmt", {}, Exception("database is locked")), True),
        (ConnectionRefusedError(111, "refused"), True),
        (ValueError("not a database error"), False),
    ],
)
def test_transient_errors(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("pg")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "transient"), [("40P01", True), ("40001", True), ("08006", True), ("23505", False)]
)
def test_postgres_transient_states(sqlstate: str, transient: bool) -> None:
    assert is_transient(OperationalError("stmt", {}, _PgError(sqlstate))) is transient


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_TIMEOUT", "-1")
    with pytest.raises(ConfigurationError, match="DB_TIMEOUT"):
        load_settings()


def test_database_url_password_never_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "oracle://scott:tiger-secret@db/x")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "DATABASE_URL" in str(raised.value) and "tiger-secret" not in str(raised.value)
