"""A TCP proxy that loses a COMMIT's acknowledgement: the fault behind "did it commit?".

Shared by the fault tests (`test_faults.py`) and the per-command lost-acknowledgement
tests (`test_lost_ack.py`).
"""

from __future__ import annotations

import contextlib
import socket
import threading

from budget_tracker.config import load_settings
from budget_tracker.unit_of_work import Database

WORKERS = 4
"""Concurrent workers of the fault workloads (and the pool size of their database)."""


def app_database(url: str, **env: str) -> Database:
    return Database(
        load_settings(
            {
                "DATABASE_URL": url,
                "BUDGET_RETRY_SECONDS": "20",
                "BUDGET_CONNECT_TIMEOUT": "2",
                "BUDGET_POOL_SIZE": str(WORKERS),
                **env,
            }
        )
    )


class CommitAckDropper:
    """A TCP proxy that, when armed, swallows the server's answer to the next COMMIT.

    The COMMIT reaches the server and commits; the proxy then closes both sides instead
    of passing `CommandComplete("COMMIT")` on, so the client sees the connection die
    without knowing whether its transaction committed. Connections must use
    sslmode=disable (and gssencmode=disable) so the protocol is readable.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.armed = threading.Event()
        self.dropped = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._answers, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        _close(source, target)

    def _answers(self, server: socket.socket, client: socket.socket) -> None:
        """Forward server messages (type byte, int32 length, body), watching for COMMIT."""
        buffer = b""
        try:
            while data := server.recv(65536):
                buffer += data
                forward = bytearray()
                while len(buffer) >= 5:
                    size = 1 + int.from_bytes(buffer[1:5], "big")
                    if len(buffer) < size:
                        break
                    message, buffer = buffer[:size], buffer[size:]
                    is_commit_ack = message[:1] == b"C" and message[5:].startswith(b"COMMIT")
                    if is_commit_ack and self.armed.is_set():
                        self.armed.clear()
                        self.dropped += 1
                        client.sendall(forward)
                        break  # the acknowledgement is lost with the connection
                    forward += message
                else:
                    client.sendall(forward)
                    continue
                break
        except OSError:
            pass
        _close(server, client)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
