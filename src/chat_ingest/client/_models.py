"""Typed results. Reads reuse the service's own response models; the rest are defined here."""

from typing import TypeAlias

from pydantic import BaseModel

from chat_ingest.schemas import ConversationOut, FileOut, MessageOut, Page
from chat_ingest.schemas import InsertResult as InsertResult  # re-exported

Conversation: TypeAlias = ConversationOut
Message: TypeAlias = MessageOut
MessageFile: TypeAlias = FileOut
MessagePage: TypeAlias = Page[MessageOut]
ConversationPage: TypeAlias = Page[ConversationOut]


class BatchItemResult(BaseModel):
    """One item of a batch: ``status`` is what a single insert of it would have answered."""

    index: int
    success: bool
    status: int
    conversation_id: str | None = None
    message_id: str | None = None
    created: bool | None = None
    error: str | None = None


class BatchResult(BaseModel):
    success: bool
    inserted: int
    duplicates: int
    failed: int
    results: list[BatchItemResult]
