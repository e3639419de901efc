"""Insert one question/answer record (the design document's example_basic.py).

Run the service with `make run`, then: `uv run python examples/basic.py [BASE_URL]`
(BASE_URL defaults to $CHAT_INGEST_URL, else http://127.0.0.1:10000).
"""

import os
import sys

from chat_ingest.client import ChatIngestClient

BASE_URL = (
    sys.argv[1]
    if len(sys.argv) > 1
    else os.environ.get("CHAT_INGEST_URL", "http://127.0.0.1:10000")
)


def main() -> None:
    with ChatIngestClient(BASE_URL) as client:
        result = client.insert(
            app_id="your-app-id",
            user_id="your-user-id",
            query="你好，请问今天天气如何？",
            answer="今天天气晴朗，气温在20-25度之间，非常适合外出活动。",
            model_provider="openai",
            model_id="gpt-3.5-turbo",
            metadata={"latency": 1.2, "temperature": 0.7, "max_tokens": 150},
        )
        print(f"插入结果: {result.model_dump_json(indent=2)}")
        conversation = client.get_conversation(result.conversation_id)
        print(f"会话: {conversation.name}, 消息数 {conversation.dialogue_count}")


if __name__ == "__main__":
    main()
