"""The Dify layout's pure parts: row values, derived ids, the required columns, the cache."""

import time
import uuid

import orjson
import pytest

from chat_ingest.errors import InvalidInput
from chat_ingest.schemas import InsertRequest
from chat_ingest.stores.dify import rows
from chat_ingest.stores.dify.cache import TtlCache
from chat_ingest.stores.dify.ids import derived_end_user_id, derived_message_id
from chat_ingest.stores.dify.tables import COLUMNS, REQUIRED, build_tables, first_missing

APP = str(uuid.uuid4())


def request(**fields: object) -> InsertRequest:
    return InsertRequest.model_validate(
        {"app_id": APP, "user_id": "u", "query": "q", "answer": "a"} | fields
    )


@pytest.mark.parametrize(
    ("query", "name"),
    [("short question", "short question"), ("x" * 20, "x" * 20), ("y" * 21, "y" * 20 + "...")],
)
def test_conversation_name_is_the_first_query_cut_to_20(query: str, name: str) -> None:
    assert rows.conversation_name(request(query=query)) == name
    assert rows.conversation_name(request(query=query, conversation_name="given")) == "given"


def test_metadata_text_always_has_retriever_resources() -> None:
    assert orjson.loads(rows.metadata_text({})) == {"retriever_resources": []}
    kept = {"retriever_resources": [{"position": 1}], "x": 1}
    assert orjson.loads(rows.metadata_text(kept)) == kept


def test_canonical_ids_and_files() -> None:
    conversation = str(uuid.uuid4())
    checked = rows.check_for_dify(
        request(
            app_id=APP.upper(),
            conversation_id=conversation.upper(),
            files=[
                {"url": "https://x.test/a", "type": "other"},
                {"url": "https://x.test/b", "upload_file_id": conversation.upper()},
            ],
        )
    )
    assert (checked.app_id, checked.conversation_id) == (APP, conversation)
    assert checked.files[1].upload_file_id == conversation
    assert [rows.stored_file_type(f) for f in checked.files] == ["custom", "document"]
    # a local file without an upload id is read by Dify only as a remote URL
    assert [rows.stored_transfer_method(f) for f in checked.files] == ["remote_url", "local_file"]


def test_system_files_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        rows.check_for_dify(request(files=[{"url": "https://x.test/a", "belongs_to": "system"}]))
    assert caught.value.detail[0]["loc"] == ["body", "files", 0, "belongs_to"]


def test_derived_ids_are_stable_uuids() -> None:
    conversation = str(uuid.uuid4())
    first = derived_message_id(conversation, "k1")
    assert first == derived_message_id(conversation, "k1") != derived_message_id(conversation, "k2")
    assert uuid.UUID(first).version == 5
    assert derived_end_user_id(APP, "alice") != derived_end_user_id(APP, "bob")


def test_first_missing_names_the_first_required_table_or_column() -> None:
    everything = {table: set(columns) for table, columns in COLUMNS.items()}
    assert first_missing(everything) is None
    assert first_missing({k: v for k, v in everything.items() if k != "apps"}) == "apps"
    without_query = everything | {"messages": everything["messages"] - {"query"}}
    assert first_missing(without_query) == "messages.query"
    optional = everything | {"messages": everything["messages"] - {"app_mode"}}
    tables = build_tables(optional)
    assert not tables.has("messages", "app_mode") and tables.has("messages", "query")
    assert all(set(required) <= set(COLUMNS[table]) for table, required in REQUIRED.items())


def test_the_cache_forgets_after_its_ttl_and_stays_bounded() -> None:
    cache: TtlCache[str, int] = TtlCache(0.05, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)
    time.sleep(0.06)
    assert cache.get("b") is None
    off: TtlCache[str, int] = TtlCache(0)
    off.put("a", 1)
    assert off.get("a") is None
