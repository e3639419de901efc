"""Prometheus metrics: the design document's insert metrics plus per-route HTTP metrics.

Under ``serve --workers N`` the environment names a ``PROMETHEUS_MULTIPROC_DIR``: every worker
writes its values there and ``/metrics`` reports their sum, whichever worker answers.
"""

import os
import time
from collections import OrderedDict

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
ACTIVE_WINDOW_SECONDS = 300.0

disable_created_metrics()  # type: ignore[no-untyped-call]

INSERT_TOTAL = Counter("chat_insert_total", "Total chat insert operations")
INSERT_SUCCESS = Counter("chat_insert_success_total", "Successful chat insert operations")
INSERT_ERRORS = Counter("chat_insert_errors_total", "Failed chat insert operations")
INSERT_DURATION = Histogram("chat_insert_duration_seconds", "Chat insert duration")
ACTIVE_CONVERSATIONS = Gauge(
    "chat_active_conversations",
    "Conversations written to in the last 5 minutes (per process; summed over live workers)",
    multiprocess_mode="livesum",
)
HTTP_REQUESTS = Counter(
    "chat_http_requests_total", "HTTP requests by route template", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "chat_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
)


class ActiveConversations:
    """Conversation ids by time of last write, oldest first, trimmed to the window."""

    def __init__(self, window: float = ACTIVE_WINDOW_SECONDS) -> None:
        self.window = window
        self._last_write: OrderedDict[str, float] = OrderedDict()

    def touch(self, *conversation_ids: str) -> None:
        """Record writes to ``conversation_ids``; the gauge is updated once per call (a batch
        of 1000 items is one update, not 1000)."""
        now = time.monotonic()
        for conversation_id in conversation_ids:
            self._last_write[conversation_id] = now
            self._last_write.move_to_end(conversation_id)
        self.count(now)

    def count(self, now: float | None = None) -> int:
        horizon = (time.monotonic() if now is None else now) - self.window
        while self._last_write and next(iter(self._last_write.values())) < horizon:
            self._last_write.popitem(last=False)
        ACTIVE_CONVERSATIONS.set(len(self._last_write))
        return len(self._last_write)


active_conversations = ActiveConversations()


class InsertCount:
    """One insert request's outcomes, recorded once when the request ends: ``expect`` the
    number of records it carries (1 until known), ``settle`` them as they are decided; records
    still unsettled when the request fails (a 400 body, a 401, a 503, a client gone) count as
    failed. One duration observation per request."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.expected = 1
        self.succeeded = 0
        self.failed = 0

    def expect(self, records: int) -> None:
        self.expected = records

    def settle(self, succeeded: int, failed: int) -> None:
        self.succeeded += succeeded
        self.failed += failed

    def fail_unsettled(self) -> None:
        self.failed += max(0, self.expected - self.succeeded - self.failed)

    def record(self) -> None:
        INSERT_TOTAL.inc(self.succeeded + self.failed)
        INSERT_SUCCESS.inc(self.succeeded)
        INSERT_ERRORS.inc(self.failed)
        INSERT_DURATION.observe(time.perf_counter() - self.started)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The metrics text and its content type: this process's, or every worker's summed."""
    active_conversations.count()  # let the window expire even when nothing is written
    registry = REGISTRY
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
