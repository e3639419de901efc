"""The storage seam: what a table layout implements, and the plain values that cross it.

A ``Store`` is the one home of a table layout (the design's tables, or Dify's): it maps planned
records to rows and owns the SQL. Deciding what to write (who is new, a replay, a conflict)
is not its job: that is ``stores.plan``, pure functions over these values. Callers own the
transaction; a store never commits.
"""

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chat_ingest.errors import ChatIngestError
from chat_ingest.schemas import InsertRequest

Owner = tuple[str, str]  # (app_id, user_id)
Key = tuple[str, str]  # (conversation_id, client_message_id)


@dataclass(frozen=True)
class PlannedRecord:
    """One valid request with everything decided before the transaction: its ids (so that a
    retried transaction writes the same ones, in the same order) and its usage figures."""

    request: InsertRequest
    conversation_id: str
    conversation_id_given: bool
    message_id: str
    message_id_given: bool
    created_at: datetime
    model_provider: str
    model_id: str
    message_tokens: int
    answer_tokens: int
    total_price: Decimal
    currency: str

    @property
    def owner(self) -> Owner:
        return (self.request.app_id, self.request.user_id)

    @property
    def key(self) -> Key | None:
        """The idempotency key, when the caller gave a client_message_id."""
        client_message_id = self.request.client_message_id
        return None if client_message_id is None else (self.conversation_id, client_message_id)

    def same_content(self, query: str, answer: str) -> bool:
        return (self.request.query, self.request.answer) == (query, answer)


@dataclass(frozen=True)
class StoredMessage:
    """What planning needs to know about a message already stored."""

    id: str
    conversation_id: str
    owner: Owner
    query: str
    answer: str


@dataclass(frozen=True)
class Snapshot:
    """What is stored for a batch's records, read (and locked) at the start of its transaction:
    the owners of the given conversations that exist, and the messages behind given ids."""

    owners: Mapping[str, Owner] = field(default_factory=dict)
    messages: Mapping[str, StoredMessage] = field(default_factory=dict)


@dataclass(frozen=True)
class NewConversation:
    """A conversation the batch creates, from its oldest message, already counting its
    messages."""

    first: PlannedRecord
    dialogue_count: int
    updated_at: datetime


@dataclass(frozen=True)
class CountDelta:
    """New messages of an existing conversation: add ``count``, move updated_at to ``latest``."""

    count: int
    latest: datetime


@dataclass(frozen=True)
class InsertOutcome:
    conversation_id: str
    message_id: str
    created: bool
    conversation_created: bool


ItemResult = InsertOutcome | ChatIngestError


@dataclass(frozen=True)
class WritePlan:
    """Who in a batch is written, who is already settled, who repeats an earlier record.

    Indexes point into ``records``. ``decided`` holds the results known before writing
    (conflicts, replays of stored messages); ``accepted`` the records to insert, in order;
    ``echoes`` maps a record to the earlier record of the batch with its key or message id."""

    records: Sequence[PlannedRecord]
    decided: Mapping[int, ItemResult]
    accepted: Sequence[int]
    echoes: Mapping[int, int]
    new_conversations: Sequence[NewConversation]

    @property
    def created_conversation_ids(self) -> frozenset[str]:
        return frozenset(new.first.conversation_id for new in self.new_conversations)


class Store(Protocol):
    """A table layout. Every method runs in the caller's transaction."""

    async def resolve(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> list[PlannedRecord | ChatIngestError]:
        """Each record as this layout stores it, or the error that keeps it out (first in the
        transaction: the Dify layout looks up apps and end users here)."""

    def check_size(self, connection: AsyncConnection, record: PlannedRecord) -> None:
        """Raise ``RecordTooLarge`` for a record the database would refuse to take."""

    async def lock_snapshot(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> Snapshot:
        """Lock the existing conversations among the records' given ones (``FOR UPDATE``, in
        id order: ``plan.conversations_to_lock``) and read their owners, and the stored
        messages among the records' given message ids (``plan.message_ids_to_read``)."""

    async def create_conversations(
        self, connection: AsyncConnection, new: Sequence[NewConversation]
    ) -> int:
        """Insert the conversations, ignoring those that exist; return how many were new."""

    async def insert_messages(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> int:
        """Insert the records' messages, ignoring duplicate keys; return how many were new."""

    async def find_messages_by_key(
        self, connection: AsyncConnection, keys: Sequence[Key]
    ) -> Mapping[Key, StoredMessage]:
        """Stored messages by ``(conversation_id, client_message_id)``."""

    async def insert_files(
        self, connection: AsyncConnection, records: Sequence[PlannedRecord]
    ) -> None:
        """Insert the files of the records (whose messages were just created)."""

    async def count_messages(
        self, connection: AsyncConnection, deltas: Mapping[str, CountDelta]
    ) -> None:
        """Add new messages to existing conversations' counts, atomically in SQL."""

    async def get_conversation(
        self, connection: AsyncConnection, conversation_id: str
    ) -> dict[str, Any] | None: ...

    async def list_messages(
        self,
        connection: AsyncConnection,
        conversation_id: str,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` of a conversation's messages, oldest first, after ``after``."""

    async def files_of(
        self, connection: AsyncConnection, message_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """The files of ``message_ids``, by message id, oldest first."""

    async def list_conversations(
        self,
        connection: AsyncConnection,
        app_id: str,
        user_id: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` conversations, most recently updated first, after ``before``."""

    def export_messages(
        self, engine: AsyncEngine, app_id: str, user_id: str | None, since: datetime | None
    ) -> AsyncIterator[dict[str, Any]]:
        """The app's messages oldest first as insert bodies, on connections of its own."""
        ...
