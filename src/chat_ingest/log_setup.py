"""Logging configuration: one line per event, JSON or text.

Callers pass context (request id, route, status, ...) as ``extra``; the JSON formatter emits
those fields. Nothing here ever receives query/answer text: callers do not log it.
"""

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES
        )
        line = super().format(record)
        return f"{line} {extras}" if extras else line


def configure_logging(level: str, log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Neither formatter prints thread or process names: do not look them up for every record
    # (one access-log line per request makes that a measurable share of a request's CPU).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # aiosqlite logs every statement with its parameters (chat text) at DEBUG.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
    # httpx logs every request at INFO: one line per batch of `import --url` on the terminal.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
