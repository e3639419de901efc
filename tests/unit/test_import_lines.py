"""The importer's pure parts: reading lines, keying keyless lines, planning batches."""

import io

import orjson

from chat_ingest.importer import ContentKeys, Line, keyed_item, read_lines
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
