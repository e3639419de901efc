"""Typed results. Reads reuse the service's own response models; the rest are defined here."""

from typing import TypeAlias

from chat_ingest.schemas import BatchItemResult as BatchItemResult  # re-exported
from chat_ingest.schemas import BatchResult as BatchResult  # re-exported
from chat_ingest.schemas import ConversationOut, FileOut, MessageOut, Page
from chat_ingest.schemas import InsertResult as InsertResult  # re-exported

Conversation: TypeAlias = ConversationOut
Message: TypeAlias = MessageOut
MessageFile: TypeAlias = FileOut
MessagePage: TypeAlias = Page[MessageOut]
ConversationPage: TypeAlias = Page[ConversationOut]
