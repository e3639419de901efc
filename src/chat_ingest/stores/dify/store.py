"""The Dify layout: records written into a Dify database's own tables (SPEC §8), implementing
``stores.base.Store``.

Ownership is decided by end user: a record's owner is ``(app id, end user id)``, and a stored
conversation has an owner only when Dify's Service API would show it to that end user
(``from_source='api'``, no account, not deleted); any other conversation conflicts with every
record.
"""

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.errors import ChatIngestError, InvalidInput
from chat_ingest.stores import sql
from chat_ingest.stores.base import (
    CountDelta,
    Key,
    NewConversation,
    Owner,
    PlannedRecord,
    Snapshot,
    StoredMessage,
)
from chat_ingest.stores.dify import reads, rows
from chat_ingest.stores.dify.directory import DifyApp, Directory
from chat_ingest.stores.dify.ids import derived_file_id, derived_message_id
from chat_ingest.stores.dify.tables import DifyTables, present
from chat_ingest.stores.dify.types import NaiveUTC
from chat_ingest.stores.plan import conversations_to_lock
from chat_ingest.stores.seed import check_statement_size

NO_OWNER = ("", "")  # the owner of a conversation no end user may write to: matches nobody


@dataclasses.dataclass(frozen=True)
class DifyRecord(PlannedRecord):
    """A planned record with the Dify app and end user it is written for."""

    app: DifyApp
    end_user_id: str
    message_id_derived: bool

    @property
    def owner(self) -> Owner:
        return (self.app.id, self.end_user_id)


def _dify(record: PlannedRecord) -> DifyRecord:
    if not isinstance(record, DifyRecord):
        raise TypeError("the Dify store writes only the records it resolved")
    return record


def _owner(row: Any) -> Owner:
    """Whose a stored conversation is: the end user that Dify's Service API shows it to."""
    if row.app_id is None or row.from_source != "api" or row.from_end_user_id is None:
        return NO_OWNER
    if row.from_account_id is not None or row.is_deleted:
        return NO_OWNER
    return (str(row.app_id), str(row.from_end_user_id))


def _with_dify_ids(record: PlannedRecord) -> dict[str, Any]:
    """What changes in ``record`` in this layout: canonical UUIDs, Dify's own checks, and
    the message id derived from the idempotency key (Dify has no ``client_message_id``
    column: the key becomes the primary key)."""
    request = rows.check_for_dify(record.request)
    changes: dict[str, Any] = {"request": request, "message_id_derived": False}
    if request.conversation_id is not None:
        changes["conversation_id"] = request.conversation_id
    if record.message_id_given:
        changes["message_id"] = request.message_id or record.message_id
    elif record.conversation_id_given and request.client_message_id is not None:
        assert request.conversation_id is not None
        key = (request.conversation_id, request.client_message_id)
        changes |= {"message_id": derived_message_id(*key), "message_id_given": True}
        changes["message_id_derived"] = True
    return changes


class DifyStore:
    def __init__(self, tables: DifyTables, ttl: float) -> None:
        self.tables = tables
        self.directory = Directory(tables, ttl)

    async def resolve(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> list[PlannedRecord | ChatIngestError]:
        """Check each record against Dify's rules, find its app (400 when it is not a
        usable Dify app) and its end user (created once when new)."""
        checked: list[tuple[PlannedRecord, dict[str, Any]] | ChatIngestError] = []
        for record in records:
            try:
                checked.append((record, _with_dify_ids(record)))
            except InvalidInput as error:
                checked.append(error)
        valid = [item[1]["request"] for item in checked if not isinstance(item, ChatIngestError)]
        apps = await self.directory.apps(connection, {request.app_id for request in valid})
        wanted = {
            (app, request.user_id)
            for request in valid
            if isinstance(app := apps[request.app_id], DifyApp)
        }
        end_users = await self.directory.end_users(connection, wanted)
        resolved: list[PlannedRecord | ChatIngestError] = []
        for item in checked:
            if isinstance(item, ChatIngestError):
                resolved.append(item)
                continue
            record, changes = item
            app = apps[changes["request"].app_id]
            if isinstance(app, ChatIngestError):
                resolved.append(app)
                continue
            end_user_id = end_users[(app.id, changes["request"].user_id)]
            fields = vars(record) | changes | {"app": app, "end_user_id": end_user_id}
            resolved.append(DifyRecord(**fields))
        return resolved

    def check_size(self, connection: AsyncConnection, record: PlannedRecord) -> None:
        check_statement_size(connection, record, lambda r: self._message_row(_dify(r)))

    async def lock_snapshot(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> Snapshot:
        """Lock the given conversations that exist (``FOR UPDATE``, in id order) before any
        message is written, so that writers to one conversation queue. The messages behind
        derived ids can only be in their own conversation: they are read by the same
        statement; ids that callers gave are read on their own."""
        derived: dict[str, list[str]] = {}
        explicit = set()
        for record in map(_dify, records):
            if record.message_id_derived:
                derived.setdefault(record.conversation_id, []).append(record.message_id)
            elif record.message_id_given:
                explicit.add(record.message_id)
        owners: dict[str, Owner] = {}
        stored: dict[str, StoredMessage] = {}
        for chunk in sql.chunks(conversations_to_lock(records)):
            message_ids = [id_ for conversation in chunk for id_ in derived.get(conversation, ())]
            for row in await connection.execute(self._locking(chunk, message_ids, connection)):
                owners[row.id] = owner = _owner(row)
                if message_ids and row.message_id is not None:
                    stored[row.message_id] = StoredMessage(
                        row.message_id, row.id, owner, row.query, row.answer
                    )
        for message in await self._messages_by_id(connection, sorted(explicit)):
            stored[message.id] = message
        return Snapshot(owners, stored)

    def _locking(
        self,
        conversation_ids: Sequence[str],
        message_ids: Sequence[str],
        connection: AsyncConnection,
    ) -> Select[Any]:
        """Lock ``conversation_ids``, reading the messages among ``message_ids`` they hold."""
        c, m = self.tables.conversations.c, self.tables.messages.c
        statement = select(c.id, c.app_id, c.from_source, c.from_end_user_id, c.from_account_id)
        statement = statement.add_columns(c.is_deleted).where(c.id.in_(conversation_ids))
        if message_ids:
            statement = statement.add_columns(m.id.label("message_id"), m.query, m.answer)
            joined = and_(m.conversation_id == c.id, m.id.in_(message_ids))
            statement = statement.outerjoin(self.tables.messages, joined)
        if connection.dialect.name == "postgresql":  # not the nullable side of the join
            return statement.order_by(c.id).with_for_update(of=self.tables.conversations)
        return statement.order_by(c.id).with_for_update()

    async def _messages_by_id(
        self, connection: AsyncConnection, message_ids: Sequence[str]
    ) -> list[StoredMessage]:
        m, c = self.tables.messages.c, self.tables.conversations.c
        found = []
        for chunk in sql.chunks(message_ids):
            statement = (
                select(m.id, m.conversation_id, m.query, m.answer, c.app_id, c.from_source)
                .add_columns(c.from_end_user_id, c.from_account_id, c.is_deleted)
                .outerjoin(self.tables.conversations, m.conversation_id == c.id)
                .where(m.id.in_(chunk))
            )
            for row in await connection.execute(statement):
                owner = _owner(row)
                found.append(
                    StoredMessage(row.id, row.conversation_id, owner, row.query, row.answer)
                )
        return found

    async def create_conversations(
        self, connection: AsyncConnection, new: Sequence[NewConversation]
    ) -> int:
        table = self.tables.conversations
        conversations = []
        for conversation in new:
            first = _dify(conversation.first)
            row = rows.conversation_row(
                first.app,
                first.conversation_id,
                first.end_user_id,
                first.request,
                (first.model_provider, first.model_id),
                first.created_at,
            )
            row |= {"dialogue_count": conversation.dialogue_count}
            row |= {"updated_at": conversation.updated_at}
            conversations.append(present(table, row))
        return await sql.insert_ignoring_duplicates(connection, table, conversations)

    def _message_row(self, record: DifyRecord) -> dict[str, Any]:
        request = record.request
        row = {
            "id": record.message_id,
            "app_id": record.app.id,
            "model_provider": record.model_provider,
            "model_id": record.model_id,
            "conversation_id": record.conversation_id,
            "inputs": request.inputs,
            "query": request.query,
            "message": rows.message_document(request.query, request.answer),
            "message_tokens": record.message_tokens,
            "message_unit_price": 0,
            "answer": request.answer,
            "answer_tokens": record.answer_tokens,
            "answer_unit_price": 0,
            "provider_response_latency": float(request.latency),
            "total_price": record.total_price,
            "currency": record.currency,
            "from_source": "api",
            "from_end_user_id": record.end_user_id,
            "from_account_id": None,
            "invoke_from": "service-api",
            "status": "normal",
            "error": None,
            "message_metadata": rows.metadata_text(request.metadata),
            "parent_message_id": rows.UUID_NIL,
            "app_mode": record.app.mode,
            "agent_based": False,
            "created_at": record.created_at,
            "updated_at": record.created_at,
        }
        return present(self.tables.messages, row)

    async def insert_messages(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> int:
        messages = [self._message_row(_dify(record)) for record in records]
        return await sql.insert_ignoring_duplicates(connection, self.tables.messages, messages)

    async def find_messages_by_key(
        self, connection: AsyncConnection, keys: Sequence[Key]
    ) -> dict[Key, StoredMessage]:
        """By the ids derived from the keys."""
        by_id = {derived_message_id(*key): key for key in keys}
        stored = await self._messages_by_id(connection, list(by_id))
        return {by_id[message.id]: message for message in stored}

    async def insert_files(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> None:
        table = self.tables.message_files
        files = []
        for record in map(_dify, records):
            file_ids = [
                derived_file_id(record.message_id, index)
                for index in range(len(record.request.files))
            ]
            for row in rows.file_rows(
                file_ids, record.request.files, record.message_id, record.end_user_id,
                record.created_at,
            ):  # fmt: skip
                files.append(present(table, row))
        await sql.insert_rows(connection, table, files)

    async def count_messages(
        self, connection: AsyncConnection, deltas: Mapping[str, CountDelta]
    ) -> None:
        await sql.count_messages(connection, self.tables.conversations, deltas, NaiveUTC())

    async def get_conversation(
        self, connection: AsyncConnection, conversation_id: str
    ) -> dict[str, Any] | None:
        return await reads.get_conversation(connection, self.tables, conversation_id)

    async def list_messages(
        self,
        connection: AsyncConnection,
        conversation_id: str,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        return await reads.list_messages(connection, self.tables, conversation_id, after, limit)

    async def files_of(
        self, connection: AsyncConnection, message_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        return await reads.files_of(connection, self.tables, message_ids)

    async def list_conversations(
        self,
        connection: AsyncConnection,
        app_id: str,
        user_id: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        return await reads.list_conversations(
            connection, self.tables, app_id, user_id, before, limit
        )

    async def export_messages(
        self, engine: AsyncEngine, app_id: str, user_id: str | None, since: datetime | None
    ) -> AsyncIterator[dict[str, Any]]:
        async for body in reads.export_messages(engine, self.tables, app_id, user_id, since):
            yield body
