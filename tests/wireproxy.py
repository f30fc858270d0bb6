"""A counting TCP proxy for the PostgreSQL wire protocol.

It sits between a client and PgBouncer (or PostgreSQL) and records every statement the
client sends: simple-protocol queries ('Q') and extended-protocol parses ('P'), with their
SQL text, plus how many connections were opened. It counts what really crosses the
wire, which SQLAlchemy's own events cannot see (psycopg2's implicit BEGIN, the dialect's
first-connect probes, pool pre-pings).

Only plain TCP is understood: the client must not negotiate TLS with the proxy (use
`sslmode=disable`; an SSLRequest is answered by the upstream with 'N' on loopback
setups anyway, and the proxy passes that through).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType

# Untyped "request codes" a client may send before its startup message.
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

COUNTED_TYPES = {b"Q": "query", b"P": "parse"}


@dataclass(frozen=True)
class Statement:
    connection: int
    kind: str
    sql: str


@dataclass
class WireLog:
    """Everything the proxy saw since the last `reset()`."""

    connections: int = 0
    statements: list[Statement] = field(default_factory=list)

    @property
    def sql(self) -> list[str]:
        return [statement.sql for statement in self.statements]


class WireProxy:
    """`with WireProxy(upstream_port=6432) as proxy:` then connect to `proxy.port`."""

    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 6432) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._log = WireLog()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> WireProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def reset(self) -> None:
        with self._lock:
            self._log = WireLog()

    def snapshot(self) -> WireLog:
        with self._lock:
            return WireLog(self._log.connections, list(self._log.statements))

    def _accept_loop(self) -> None:
        number = 0
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._log.connections += 1
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(
                target=self._client_to_server, args=(number, client, server), daemon=True
            ).start()
            threading.Thread(target=_pump, args=(server, client), daemon=True).start()

    def _record(self, number: int, kind: str, sql: str) -> None:
        with self._lock:
            self._log.statements.append(Statement(number, kind, sql))

    def _client_to_server(self, number: int, client: socket.socket, server: socket.socket) -> None:
        reader = _Reader(client)
        try:
            # Untyped messages first: optional SSL/GSSENC requests, then the startup packet.
            while True:
                header = reader.exactly(4)
                (length,) = struct.unpack("!i", header)
                body = reader.exactly(length - 4)
                server.sendall(header + body)
                (code,) = struct.unpack("!i", body[:4])
                if code not in (SSL_REQUEST, GSSENC_REQUEST):
                    break
            while True:
                kind = reader.exactly(1)
                header = reader.exactly(4)
                (length,) = struct.unpack("!i", header)
                body = reader.exactly(length - 4)
                # Recorded before it is forwarded: once the client has the server's answer,
                # the log already holds the statement, so no test has to wait for it.
                if kind in COUNTED_TYPES:
                    self._record(number, COUNTED_TYPES[kind], _sql_of(kind, body))
                server.sendall(kind + header + body)
                if kind == b"X":
                    break
        except (OSError, EOFError):
            pass
        finally:
            _close(server)
            _close(client)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(max(65536, count - len(self.buffer)))
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data


def _sql_of(kind: bytes, body: bytes) -> str:
    if kind == b"P":
        # Parse: statement name (C string), then the query (C string).
        body = body[body.index(b"\0") + 1 :]
    return body.split(b"\0", 1)[0].decode("utf-8", "replace")


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            chunk = source.recv(65536)
            if not chunk:
                break
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(target)
        _close(source)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
