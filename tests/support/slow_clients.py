"""Slow clients, as the attack on the local topology found them: each announces a request
body and then sends it one byte at a time.

    with SlowBodyClients(port, connections=16) as attack:
        attack.wait_for_rounds(3)       # 3 intervals, a byte on every connection in each
        ...                             # what must still work meanwhile
    attack.answers                      # Counter of the status codes the server ended them with

An answer does not stop a client (an attacker ignores it): it goes on sending until the
server hangs up, and a connection hung up on is opened again, so the attack keeps its width
for as long as it runs. Bounded: it stops after `max_seconds` whatever the caller does. Loopback
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

    def _read(self, connection: socket.socket, answered: bool) -> tuple[bool, bool]:
        """Take what the server sent: (answered now, closed). An answer does not stop the
        client: like an attacker it goes on sending until the server hangs up."""
        try:
            data = connection.recv(4096)
        except BlockingIOError:
            return answered, False
        except OSError:
            data = b""
        with self._lock:
            if data.startswith(b"HTTP/") and not answered:
                self.answers[int(data.split(None, 2)[1])] += 1
                return True, False
            if not data and not answered:
                self.closed_without_answer += 1
        return answered, not data

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        connections = [self._open() for _ in range(self.connections)]
        answered = [False] * self.connections
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                for index, connection in enumerate(connections):
                    try:
                        connection.send(b"x")
                    except OSError:  # hung up on: what did it say first?
                        answered[index], _ = self._read(connection, answered[index])
                        self._reopen(connections, answered, index)
                with self._lock:
                    self.rounds += 1
                # Until the next byte is due, collect what the server says.
                next_round = time.monotonic() + self.interval_seconds
                while (remaining := next_round - time.monotonic()) > 0 and not self._stop.is_set():
                    readable, _, _ = select.select(connections, [], [], min(remaining, 0.2))
                    for connection in readable:
                        index = connections.index(connection)
                        answered[index], closed = self._read(connection, answered[index])
                        if closed:
                            self._reopen(connections, answered, index)
        finally:
            for connection in connections:
                connection.close()

    def _reopen(self, connections: list[socket.socket], answered: list[bool], index: int) -> None:
        connections[index].close()
        connections[index] = self._open()
        answered[index] = False
