"""Where the examples find the service: the first argument, else $CHAT_INGEST_URL, else the
address `make run` serves on."""

import os
import sys


def base_url() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1]
    return os.environ.get("CHAT_INGEST_URL", "http://127.0.0.1:10000")
