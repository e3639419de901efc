"""Realistic records for the benchmarks: ~150-character Chinese query, ~400-character Chinese
answer, metadata and inputs; optionally two files."""

import random
from typing import Any

_COMMON_HAN = (0x4E00, 0x9FA5)  # CJK Unified Ideographs


def chinese(length: int, rng: random.Random) -> str:
    text = "".join(chr(rng.randint(*_COMMON_HAN)) for _ in range(length))
    return "".join(ch + ("，" if i % 17 == 16 else "") for i, ch in enumerate(text))


def insert_body(n: int, rng: random.Random, with_files: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app_id": "bench-app",
        "user_id": f"user-{n % 5000}",
        "query": chinese(150, rng),
        "answer": chinese(400, rng),
        "model_provider": "openai",
        "model_id": "gpt-4o-mini",
        "inputs": {"channel": "web", "locale": "zh-CN"},
        "metadata": {"latency": round(rng.uniform(0.2, 3.0), 3), "temperature": 0.7, "n": n},
    }
    if with_files:
        body["files"] = [
            {
                "type": "image",
                "transfer_method": "remote_url",
                "url": f"https://cdn.example.com/{n}.png",
            },
            {"type": "document", "url": f"/uploads/{n}/report.pdf", "belongs_to": "assistant"},
        ]
    return body
