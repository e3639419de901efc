"""The importer's pure parts: reading lines, keying keyless lines, planning batches."""

import io
import uuid

import orjson

from chat_ingest.importer import (
    ContentKeys,
    Line,
    derived_conversation_id,
    keyed_item,
    read_lines,
)
from chat_ingest.sinks import BatchLimits, batch_bytes, plan_batches


def lines_of(data: bytes) -> list[tuple[int, bytes]]:
    return [(line.number, line.data) for line in read_lines(io.BytesIO(data))]


def test_line_endings_and_byte_order_mark() -> None:
    expected = [(1, b'{"a":1}'), (2, b'{"b":"\xe4\xb8\xad"}'), (4, b"x")]
    for separator in (b"\n", b"\r\n", b"\r"):
        data = separator.join([b'{"a":1}', '{"b":"中"}'.encode(), b"  ", b"x"]) + separator
        assert lines_of(b"\xef\xbb\xbf" + data) == expected
        assert lines_of(data) == expected


def test_undecodable_bytes_are_kept_as_read() -> None:
    assert lines_of(b'{"a":"\xff"}\n') == [(1, b'{"a":"\xff"}')]


def keys_of(*contents: bytes) -> list[str]:
    keys = ContentKeys()
    items = [keyed_item(Line(n, data), keys) for n, data in enumerate(contents, start=1)]
    return [item["client_message_id"] for item in items]


def test_keyless_lines_are_keyed_by_content_and_occurrence() -> None:
    a, b = b'{"query":"a"}', b'{"query":"b"}'
    first = keys_of(a, b, a)
    assert len(set(first)) == 3  # identical lines stay distinct messages
    assert keys_of(b, a, a) == [first[1], first[0], first[2]]  # not tied to line numbers
    assert keys_of(a) == first[:1]


def test_given_keys_are_kept_and_not_counted() -> None:
    keys = ContentKeys()
    given = keyed_item(Line(1, b'{"conversation_id":"c","client_message_id":"k"}'), keys)
    assert given == {"conversation_id": "c", "client_message_id": "k"}
    derived = keyed_item(Line(2, b'{"client_message_id":"k"}'), keys)
    assert derived["client_message_id"] == "k" and derived["conversation_id"]


def conversation_ids(*contents: bytes) -> list[str]:
    keys = ContentKeys()
    return [keyed_item(Line(n, data), keys)["conversation_id"] for n, data in enumerate(contents)]


def test_derived_conversation_ids_sort_by_created_at_and_do_not_change() -> None:
    times = ["2024-05-01T10:00:00+08:00", "2024-05-01T02:00:00.001", "2024-05-01T02:00:01Z"]
    lines = [b'{"query":"%d","created_at":"%s"}' % (n, t.encode()) for n, t in enumerate(times)]
    derived = conversation_ids(*reversed(lines))[::-1]
    assert derived == sorted(derived) and len(set(derived)) == 3
    assert conversation_ids(*lines) == derived  # the same lines, the same ids, in any order
    assert {uuid.UUID(i).version for i in derived} == {8}
    epoch_ms = int(derived[0].replace("-", "")[:12], 16)
    assert epoch_ms == 1714528800000  # 2024-05-01T02:00:00Z, as a UUIDv7 would lead
    # Not a usable time (validation rejects or stamps such lines later): the digest alone.
    digest = "ab" * 32
    for unusable in (None, "yesterday", 5, "1900-01-01T00:00:00Z"):
        assert derived_conversation_id(digest, unusable) == str(uuid.UUID(digest[:32]))


def test_batches_respect_both_limits_and_isolate_an_oversized_item() -> None:
    limits = BatchLimits(max_body_bytes=100, max_items=3)
    sizes = [20, 20, 20, 20, 95, 30, 30, 30]
    plan = list(plan_batches(sizes, limits))
    assert plan == [[0, 1, 2], [3], [4], [5, 6], [7]]
    for batch in plan:
        if batch != [4]:
            assert len(batch) <= 3 and batch_bytes([sizes[i] for i in batch]) <= 100
    assert batch_bytes([20, 20]) == len(orjson.dumps({"items": ["x" * 18, "x" * 18]}))


def test_a_413_lowers_the_body_limit_to_what_the_service_says() -> None:
    limits = BatchLimits(max_body_bytes=10_000_000, max_items=1000)
    limits.lower_body_limit({"max_body_bytes": 4096}, refused_size=9000)
    assert limits.max_body_bytes == 4096
    limits.lower_body_limit(None, refused_size=3000)  # a proxy's 413, without our detail
    assert limits.max_body_bytes == 1500
    limits.lower_body_limit({"max_body_bytes": 100_000}, refused_size=1400)
    assert limits.max_body_bytes == 1399  # never above a size that was refused
