"""Fixtures for `pyscale deploy wait`: the scripted AWS conversation, a clock that moves
only when the command sleeps, and a real HTTP server on loopback standing in for the
stack's URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.contract import HEALTH_PATH
from tests.deploy.aws import ScriptedAws, clients


class FakeClock:
    """Time advances only by the command's own sleeps: waits and timeouts are exact."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class HealthServer:
    """Answers HEALTH_PATH with the next of ``statuses`` (the last one repeats; 200 unless a
    test sets them) and records every path requested."""

    def __init__(self) -> None:
        self.statuses = [200]
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                code = owner.statuses[0] if self.path == HEALTH_PATH else 404
                if len(owner.statuses) > 1:
                    owner.statuses.pop(0)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def health_server() -> Iterator[HealthServer]:
    server = HealthServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def aws_clients():
    """Built once: loading botocore's service models is the slow part."""
    return clients()


@pytest.fixture
def aws(aws_clients) -> Iterator[ScriptedAws]:
    with ScriptedAws(*aws_clients) as scripted:
        yield scripted


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
