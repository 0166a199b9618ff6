"""Slow clients, as the attack on the local topology found them: each announces a request
body and then sends it one byte at a time.

    with SlowBodyClients(port, connections=16) as attack:
        attack.wait_for_rounds(3)       # 3 intervals, a byte on every connection in each
        ...                             # what must still work meanwhile
    attack.answers                      # Counter of the status codes the server ended them with

A connection the server answers or closes is opened again, so the attack keeps its width for
as long as it runs. Bounded: it stops after `max_seconds` whatever the caller does. Loopback
only; used by tests/local and bench/bench_slow_clients.py.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections import Counter
from types import TracebackType


class SlowBodyClients:
    def __init__(
        self,
        port: int,
        *,
        connections: int = 16,
        path: str = "/healthz",
        announced_bytes: int = 1000,
        interval_seconds: float = 2.0,
        max_seconds: float = 60.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.port, self.host, self.path = port, host, path
        self.connections = connections
        self.announced_bytes = announced_bytes
        self.interval_seconds = interval_seconds
        self.max_seconds = max_seconds
        self.answers: Counter[int] = Counter()
        self.closed_without_answer = 0
        self.rounds = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def __enter__(self) -> SlowBodyClients:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_seconds + 10)

    def wait_for_rounds(self, rounds: int) -> None:
        """Until `rounds` rounds were sent (a byte on every connection each interval); bounded."""
        self._wait(lambda: self.rounds >= rounds, f"{rounds} rounds of slow bytes")

    def wait_for_answers(self, count: int) -> None:
        """Until the server answered (or closed) `count` slow requests in all; bounded."""
        self._wait(
            lambda: sum(self.answers.values()) + self.closed_without_answer >= count,
            f"{count} slow requests ended by the server",
        )

    def _wait(self, condition, what: str) -> None:
        deadline = time.monotonic() + self.max_seconds + 5
        while True:
            with self._lock:
                if condition():
                    return
            if time.monotonic() >= deadline or not self._thread.is_alive():
                raise AssertionError(f"the slow clients never saw {what}")
            time.sleep(0.05)

    def _open(self) -> socket.socket:
        connection = socket.create_connection((self.host, self.port), timeout=5)
        connection.sendall(
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {self.announced_bytes}\r\n\r\n".encode()
        )
        connection.setblocking(False)
        return connection

    def _ended(self, connection: socket.socket) -> None:
        """The server answered or hung up: note how, and let the caller reopen."""
        try:
            data = connection.recv(4096)
        except OSError:
            data = b""
        connection.close()
        with self._lock:
            if data.startswith(b"HTTP/"):
                self.answers[int(data.split(None, 2)[1])] += 1
            else:
                self.closed_without_answer += 1

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        open_connections = [self._open() for _ in range(self.connections)]
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                for index, connection in enumerate(open_connections):
                    try:
                        connection.send(b"x")
                    except OSError:
                        self._ended(connection)
                        open_connections[index] = self._open()
                with self._lock:
                    self.rounds += 1
                # Until the next byte is due, collect what the server says.
                next_round = time.monotonic() + self.interval_seconds
                while (remaining := next_round - time.monotonic()) > 0 and not self._stop.is_set():
                    readable, _, _ = select.select(open_connections, [], [], min(remaining, 0.2))
                    for connection in readable:
                        index = open_connections.index(connection)
                        self._ended(connection)
                        open_connections[index] = self._open()
        finally:
            for connection in open_connections:
                connection.close()
