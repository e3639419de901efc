"""Clients a real ``chat-ingest serve`` must survive: one that trickles its body a byte at a
time (one deadline for the whole body, then 408), and one that leaves mid-body (a 499 in the
metrics and the log, no traceback, not a 500)."""

import re
import socket
import time
from pathlib import Path

import httpx
import orjson

from tests.e2e.servers import serving

BODY = orjson.dumps({"app_id": "app", "user_id": "u", "query": "q" * 50, "answer": "a" * 40})
BODY_TIMEOUT = 2.0


def _open(base_url: str, declared_length: int) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    head = (
        "POST /api/chat/insert HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {declared_length}\r\n\r\n"
    )
    connection.sendall(head.encode())
    return connection


def _status_line(connection: socket.socket) -> str:
    return connection.recv(4096).split(b"\r\n", 1)[0].decode()


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_slow_and_vanishing_clients(tmp_path: Path) -> None:
    log_path = tmp_path / "serve.log"
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "BODY_TIMEOUT": str(BODY_TIMEOUT),
        "LOG_LEVEL": "INFO",
    }
    with serving(env, log_path=log_path) as [url]:
        started = time.monotonic()
        with _open(url, len(BODY)) as trickling:
            for byte in BODY[:8]:  # each byte well within the timeout, the body not
                trickling.sendall(bytes([byte]))
                time.sleep(BODY_TIMEOUT / 4)
                if time.monotonic() - started > BODY_TIMEOUT + 1:
                    break
            trickling.settimeout(BODY_TIMEOUT + 10)
            assert " 408 " in _status_line(trickling)
        assert time.monotonic() - started < BODY_TIMEOUT + 5

        with _open(url, len(BODY)) as leaving:
            leaving.sendall(BODY[:10])
        time.sleep(1.0)  # let the server notice

        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        labels = '{method="POST",route="/api/chat/insert",status="499"}'
        assert _metric(metrics, "chat_http_requests_total", labels) == 1
        assert _metric(metrics, "chat_insert_errors_total") == 2  # the 408 and the 499
        assert '"500"' not in metrics
    logged = log_path.read_text()
    assert "status=499" in logged and "status=408" in logged
    assert "Traceback" not in logged and "ERROR" not in logged


def test_a_client_cannot_escape_its_budget_by_inventing_forwarded_for(tmp_path: Path) -> None:
    """No proxy is trusted by default: X-Forwarded-For from the client changes nothing."""
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", "RATE_LIMIT": "3/hour"}
    with serving(env) as [url], httpx.Client(base_url=url, timeout=30) as http:
        statuses = [
            http.post(
                "/api/chat/insert",
                content=BODY,
                headers={"content-type": "application/json", "x-forwarded-for": f"10.9.8.{i}"},
            ).status_code
            for i in range(5)
        ]
    assert statuses == [200, 200, 200, 429, 429]
