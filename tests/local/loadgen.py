"""A small, bounded load generator for the topology tests (benchmarks use wrk instead).

Threads send GET requests over keep-alive connections (http.client: no pooling layer
between the test and what HAProxy does) until stopped, until `max_requests` were sent or
until `max_seconds` passed, whichever comes first, so a test can never hang on it.
Every outcome is recorded: status codes, connection errors, which replica answered.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

PathChooser = Callable[[int], str]


def root_path(_: int) -> str:
    return "/"


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    instances: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    @property
    def failed(self) -> int:
        """Requests a client would call failed: no response at all, or a 5xx."""
        return self.server_errors + sum(self.errors.values())


class BoundedLoad:
    """Steady load against 127.0.0.1:`port` from `threads` threads, in the background."""

    def __init__(
        self,
        port: int,
        *,
        path: PathChooser = root_path,
        threads: int = 4,
        max_requests: int = 20_000,
        max_seconds: float = 60,
        pause_seconds: float = 0.002,
    ) -> None:
        self.port = port
        self.path = path
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        # A short pause per request keeps the load steady but leaves the (few) cores to
        # the processes under test.
        self.pause_seconds = pause_seconds
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sequence = itertools.count()
        self._threads = [
            threading.Thread(target=self._run, name=f"load-{index}", daemon=True)
            for index in range(threads)
        ]

    def __enter__(self) -> BoundedLoad:
        self._deadline = time.monotonic() + self.max_seconds
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.snapshot()

    def snapshot(self) -> LoadResult:
        with self._lock:
            return LoadResult(
                statuses=Counter(self.result.statuses),
                instances=Counter(self.result.instances),
                errors=Counter(self.result.errors),
            )

    def wait_for_requests(self, count: int, timeout_seconds: float = 30) -> LoadResult:
        """Poll until at least `count` requests completed in total; fail at the deadline."""
        deadline = time.monotonic() + timeout_seconds
        while (current := self.snapshot()).total < count:
            if time.monotonic() >= deadline or self._stop.is_set():
                raise AssertionError(f"load made only {current.total}/{count} requests")
            time.sleep(0.02)
        return current

    def _run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            sequence = next(self._sequence)
            if sequence >= self.max_requests:
                break
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            try:
                connection.request("GET", self.path(sequence))
                response = connection.getresponse()
                body = response.read()
                self._record(response.status, _instance(response, body), None)
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as error:
                self._record(None, None, type(error).__name__)
                connection.close()
                connection = None
            time.sleep(self.pause_seconds)
        if connection is not None:
            connection.close()

    def _record(self, status: int | None, instance: str | None, error: str | None) -> None:
        with self._lock:
            if status is not None:
                self.result.statuses[status] += 1
            if instance is not None:
                self.result.instances[instance] += 1
            if error is not None:
                self.result.errors[error] += 1


def _instance(response: http.client.HTTPResponse, body: bytes) -> str | None:
    if response.getheader("Content-Type", "").startswith("application/json"):
        try:
            document = json.loads(body)
        except ValueError:
            return None
        if isinstance(document, dict) and isinstance(document.get("instance"), str):
            return document["instance"]
    return None
