"""Python client for the chat-ingest HTTP API.

```python
from chat_ingest.client import ChatIngestClient

with ChatIngestClient("http://127.0.0.1:10000") as client:
    result = client.insert(app_id="my-app", user_id="u-1", query="Hi", answer="Hello!")
    for message in client.iter_messages(result.conversation_id):
        print(message.query, "->", message.answer)
```

Every call retries (up to ``max_retries`` times, exponential backoff with jitter, honouring
``Retry-After``) when no response arrived, on 429 and on 503, and never on another 4xx.
Failures raise a subclass of ``ChatIngestError``.
"""

from chat_ingest.client._async import AsyncChatIngestClient
from chat_ingest.client._errors import (
    AuthenticationError,
    ChatIngestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
    ValidationError,
)
from chat_ingest.client._models import (
    BatchItemResult,
    BatchResult,
    Conversation,
    ConversationPage,
    InsertResult,
    Message,
    MessageFile,
    MessagePage,
)
from chat_ingest.client._sync import ChatIngestClient

__all__ = [
    "AsyncChatIngestClient",
    "AuthenticationError",
    "BatchItemResult",
    "BatchResult",
    "ChatIngestClient",
    "ChatIngestError",
    "ConflictError",
    "Conversation",
    "ConversationPage",
    "InsertResult",
    "Message",
    "MessageFile",
    "MessagePage",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "ServiceUnavailableError",
    "TransportError",
    "ValidationError",
]
