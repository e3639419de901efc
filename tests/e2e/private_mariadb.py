"""A private MariaDB server for outage tests: its own datadir, port and socket, controlled by PID.

The shared test server must never be killed, so tests that take a database down start their
own ``mariadbd`` from the system's binaries and stop it by the PID they started.
"""

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.servers import free_port, start_timeout

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


def _binary(name: str) -> str:
    found = shutil.which(name, path=SEARCH_PATH)
    if found is None:
        message = f"{name} not found: the outage tests need MariaDB's server binaries"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class PrivateMariaDB:
    """One ``mariadbd`` process on a datadir of its own; ``kill`` and ``start`` it at will."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.datadir = directory / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def server_url(self) -> str:
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}/mysql"

    def install(self) -> None:
        done = subprocess.run(
            [
                _binary("mariadb-install-db"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--user={getpass.getuser()}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            pytest.fail(f"mariadb-install-db failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def start(self, *options: str) -> None:
        """Start the server (with extra ``mariadbd`` ``options``) and wait until it accepts
        TCP connections."""
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                _binary("mariadbd"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.directory / 'mysqld.sock'}",
                f"--pid-file={self.directory / 'mysqld.pid'}",
                f"--user={getpass.getuser()}",
                "--character-set-server=utf8mb4",
                "--innodb-buffer-pool-size=32M",
                "--skip-log-bin",
                *options,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self._wait_for_port()

    def _wait_for_port(self) -> None:
        assert self.process is not None
        timeout = start_timeout()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "server.log").read_text(errors="replace")
                raise RuntimeError(f"mariadbd exited early:\n{log[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"mariadbd did not listen on {self.port} in {timeout}s")

    def kill(self) -> None:
        """Take the server down the hard way (SIGKILL), as a crash or an OOM kill would."""
        self.stop(signal.SIGKILL)

    def freeze(self) -> None:
        """Stop the server without closing its sockets (SIGSTOP): a hung host or a network
        partition, where nothing fails fast and only timeouts help."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        process.send_signal(sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextmanager
def private_mariadb(directory: Path) -> Iterator[PrivateMariaDB]:
    server = PrivateMariaDB(directory)
    server.install()
    server.start()
    try:
        yield server
    finally:
        server.stop()
