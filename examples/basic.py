"""Insert one question/answer record (the design document's example_basic.py).

Usage: `uv run python examples/basic.py [BASE_URL]` (see README, "More").
"""

from _common import base_url

from chat_ingest.client import ChatIngestClient


def main() -> None:
    with ChatIngestClient(base_url()) as client:
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
