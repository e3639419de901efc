"""Three questions of one multi-turn conversation (the design document's example_batch.py).

Every turn goes into the same conversation: the first insert's conversation_id is reused.
Then the conversation is read back, oldest message first.

Usage: `uv run python examples/multi_turn.py [BASE_URL]` (see README, "More").
"""

from _common import base_url

from chat_ingest.client import ChatIngestClient

TURNS = [
    (
        "什么是机器学习？",
        "机器学习是人工智能的一个分支，它使计算机能够在没有明确编程的情况下学习和改进。",
    ),
    (
        "机器学习有哪些应用场景？",
        "机器学习广泛应用于图像识别、自然语言处理、推荐系统、金融风控等领域。",
    ),
    (
        "如何开始学习机器学习？",
        "建议从基础数学和统计学开始，然后学习Python编程，再逐步深入算法和框架。",
    ),
]


def main() -> None:
    with ChatIngestClient(base_url()) as client:
        conversation_id = None
        for number, (query, answer) in enumerate(TURNS, start=1):
            result = client.insert(
                app_id="your-app-id",
                user_id="your-user-id",
                conversation_id=conversation_id,
                query=query,
                answer=answer,
            )
            conversation_id = result.conversation_id
            print(f"第{number}条插入结果: {result.model_dump_json(indent=2)}")
        assert conversation_id is not None
        print(f"会话 {conversation_id}:")
        for message in client.iter_messages(conversation_id):
            print(f"  问: {message.query}\n  答: {message.answer}")


if __name__ == "__main__":
    main()
