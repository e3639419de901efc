"""``LOAD DATA LOCAL INFILE`` without ever reading a local file.

With LOCAL, the server answers the statement with "send me file X" and the driver sends it.
The MySQL protocol lets a server send that request in answer to *any* statement, naming any
file, and drivers obey: a hostile or impersonated server could read whatever the process can
(a known attack on MySQL clients). So the driver's file sender is replaced by one that opens
nothing: it sends the bytes registered with ``offering`` under the name the server asks for,
and for any other name sends an empty file and fails the statement.

Only asyncmy is covered (the service's MySQL driver; its own sender also cannot take the
file name its protocol layer hands it, so LOCAL does not work there without this). Other
MySQL drivers keep LOCAL off, and their bulk writes stay multi-row INSERTs.
"""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncmy.connection
import asyncmy.errors

# Per protocol packet: well under any server's max_allowed_packet (1 KB at the very least, but
# 4 MB or more by default). The socket is drained every 16 packets, 1 MB.
PACKET_BYTES = 64 * 1024
PACKETS_PER_DRAIN = 16
CR_LOAD_DATA_LOCAL_INFILE_REJECTED = 2068  # the MySQL client library's code for a refusal
_offered: dict[bytes, bytes] = {}  # one-off name -> the bytes to send for it


class RefusedFileRequest(asyncmy.errors.OperationalError):
    """The server asked for a file this process did not offer."""


def enabled(driver: str) -> bool:
    return driver == "asyncmy"


@contextmanager
def offering(payload: bytes) -> Iterator[str]:
    """A one-off name to put in a ``LOAD DATA LOCAL INFILE`` statement: the server's request
    for that name (and only that name) is answered with ``payload``."""
    name = f"chat-ingest-{secrets.token_hex(16)}"
    _offered[name.encode()] = payload
    try:
        yield name
    finally:
        _offered.pop(name.encode(), None)


class _OfferedDataSender:
    """Stands in for asyncmy's ``LoadLocalFile`` (same constructor and ``send_data``)."""

    def __init__(self, filename: bytes | str, connection: Any) -> None:
        self.filename = filename.encode() if isinstance(filename, str) else filename
        self.connection = connection

    async def send_data(self) -> None:
        payload = _offered.pop(self.filename, None)
        data = b"" if payload is None else payload
        connection = self.connection
        try:
            for number, start in enumerate(range(0, len(data), PACKET_BYTES), 1):
                connection.write_packet(data[start : start + PACKET_BYTES])
                if number % PACKETS_PER_DRAIN == 0:
                    await connection._proto.drain()
        finally:
            connection.write_packet(b"")  # the end of the "file"
            await connection._proto.drain()
        if payload is None:
            name = self.filename.decode(errors="replace")[:200]
            raise RefusedFileRequest(
                CR_LOAD_DATA_LOCAL_INFILE_REJECTED,
                f"the server asked for a file that was not offered: {name}",
            )


def install() -> None:
    """Put the offered-data sender in asyncmy's place (idempotent)."""
    asyncmy.connection.LoadLocalFile = _OfferedDataSender  # type: ignore[misc,assignment]
