"""The records the console tests look at, written through the service's batch API.

Ids and times are fixed so that the screenshot in docs/ stays the same from run to run.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

Post = Callable[..., dict[str, Any]]

START = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
DEMO_APP = "support-bot"
DEMO_CONVERSATION = "conv-refund-demo"
PAGING_APP = "paging-app"
PAGING_CONVERSATIONS = 25  # 20 on the first page, 5 on the second
LONG_APP = "long-app"
LONG_CONVERSATION = "conv-long-2000"
LONG_MESSAGES = 2000
XSS_APP = "xss-app"
XSS_CONVERSATION = "conv-xss"
XSS_ANSWER = (
    "<img src=x onerror=\"window.__xss='img'\"><script>window.__xss='script'</script>"
    "<a href=\"javascript:window.__xss='link'\">click</a>"
)
EXTERNAL_FILE = "https://files.example.com/invoice-7731.png"

DEMO_TURNS: list[dict[str, Any]] = [
    {
        "query": "你好，我上周买的耳机左边没有声音，可以退款吗？🎧",
        "answer": (
            "您好！很抱歉给您带来不便 🙏\n"
            "可以退款：订单在 30 天内，请上传发票照片，我们会在 3 个工作日内处理。"
        ),
        "files": [
            {"type": "image", "transfer_method": "remote_url", "url": EXTERNAL_FILE},
        ],
        "metadata": {"latency": 1.284, "retriever_resources": [{"doc": "退款政策 v3"}]},
        "message_tokens": 38,
        "answer_tokens": 61,
        "total_price": "0.00198",
    },
    {
        "query": "发票已经上传了，订单号 A-7731。",
        "answer": "收到 ✅ 退款已提交，金额 ¥399.00 将原路退回。还有其他问题吗？",
        "files": [
            {"type": "document", "url": "/srv/uploads/A-7731/invoice.pdf", "belongs_to": "user"},
        ],
        "metadata": {"latency": 0.912},
        "message_tokens": 19,
        "answer_tokens": 33,
        "total_price": "0.00104",
    },
    {
        "query": "شكرا! هل يمكنني الحصول على إيصال بالعربية؟",
        "answer": "بالتأكيد، سيصلك الإيصال بالبريد الإلكتروني خلال ساعة. 😊",
        "metadata": {"latency": 0.655},
        "message_tokens": 14,
        "answer_tokens": 22,
        "total_price": "0.00072",
    },
]


def _at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


def _demo_items() -> Iterator[dict[str, Any]]:
    for number, turn in enumerate(DEMO_TURNS):
        yield {
            "app_id": DEMO_APP,
            "user_id": "customer-4821",
            "conversation_id": DEMO_CONVERSATION,
            "conversation_name": "耳机退款 · headphone refund",
            "client_message_id": f"support-{number + 1:03d}",
            "message_id": f"0195516a-7f00-7000-8000-00000000000{number}",
            "model_provider": "in-house",
            "model_id": "qwen2.5-7b-support",
            "created_at": _at(number * 95),
            "inputs": {"channel": "app", "language": "zh-CN"},
            **turn,
        }


def _paging_items() -> Iterator[dict[str, Any]]:
    for number in range(PAGING_CONVERSATIONS):
        yield {
            "app_id": PAGING_APP,
            "user_id": "user-b" if number % 2 else "user-a",
            "conversation_id": f"paging-{number:02d}",
            "conversation_name": f"Paging conversation {number:02d}",
            "query": f"question {number}",
            "answer": f"answer {number}",
            "created_at": _at(number * 60),
        }


def _long_items() -> Iterator[dict[str, Any]]:
    for number in range(1, LONG_MESSAGES + 1):
        yield {
            "app_id": LONG_APP,
            "user_id": "night-backfill",
            "conversation_id": LONG_CONVERSATION,
            "conversation_name": "Last night's backfill",
            "client_message_id": f"long-{number:04d}",
            "query": f"question {number:04d}",
            "answer": f"answer {number:04d}",
            "created_at": _at(number),
        }


def _xss_items() -> Iterator[dict[str, Any]]:
    yield {
        "app_id": XSS_APP,
        "user_id": "<b>mallory</b>",
        "conversation_id": XSS_CONVERSATION,
        "conversation_name": "<script>window.__xss='name'</script>",
        "query": "<b>is this bold?</b>",
        "answer": XSS_ANSWER,
        "files": [{"url": "https://example.com/<script>x</script>.png"}],
        "metadata": {"note": "<img src=x onerror=\"window.__xss='metadata'\">"},
    }


def _post_batches(post: Post, items: list[dict[str, Any]], key: str | None = None) -> None:
    for start in range(0, len(items), 1000):
        result = post("/api/chat/insert/batch", {"items": items[start : start + 1000]}, key)
        assert result["failed"] == 0, result


def seed_open_server(post: Post) -> None:
    items = [*_demo_items(), *_paging_items(), *_xss_items()]
    _post_batches(post, items)
    _post_batches(post, list(_long_items()))


def seed_auth_server(post: Post, keys: dict[str, str]) -> None:
    """One conversation per app, each written with its own app's key."""
    for app_id, key in keys.items():
        item = {
            "app_id": app_id,
            "user_id": f"{app_id}-user",
            "conversation_id": f"{app_id}-conversation",
            "conversation_name": f"Secret talk of {app_id}",
            "query": f"private question of {app_id}",
            "answer": f"private answer of {app_id}",
        }
        _post_batches(post, [item], key)
