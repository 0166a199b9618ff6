"""What a client can and cannot do to the topology through HAProxy: the attack cases found
against the one-machine topology, each as a bounded loopback test on real HAProxy + gunicorn
(+ redis-server). The same request rules guard every EC2 instance (infra/boot/proxy.py).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from app.contract import HEALTH_PATH, MAX_REQUEST_BODY_BYTES
from app.report import REPORT_FORMAT_VERSION, build_report
from pyscale.local.haproxy import HealthCheck
from pyscale.local.ports import free_port
from pyscale.local.topology import LocalTopology, TopologySpec
from tests.local.conftest import StartTopology
from tests.support.servers import wait_until
from tests.support.slow_clients import SlowBodyClients

pytestmark = pytest.mark.slow


def request(
    port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def raw_status(port: int, raw: bytes) -> int:
    """The status line's code for a request sent byte for byte as given."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(raw)
        return int(connection.recv(4096).split(None, 2)[1])


def access_log(topology: LocalTopology, replica: str) -> list[dict]:
    """The replica's gunicorn access log lines (JSON), as written so far."""
    path = Path(topology.state().replica(replica).process.log_path)
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "gunicorn.access"]


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[LocalTopology]:
    """One replica behind HAProxy, shared by the tests that only send requests."""
    workdir = tmp_path_factory.mktemp("edge") / "work"
    started = LocalTopology(workdir)
    started.start(TopologySpec(replicas=1, workers=1, port=free_port(), workdir=workdir))
    yield started
    assert started.stop().leftover_pids == ()


# --- forwarded headers ----------------------------------------------------------------------


def redirect_scheme(port: int, headers: dict[str, str]) -> str:
    """The scheme the app believes the client used: GET /api/report redirects (308) to an
    absolute URL built from it."""
    status, response_headers, _ = request(port, "/api/report", headers)
    assert status == 308
    return response_headers["location"].split("://", 1)[0]


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-Proto": "https"},
        {"X-Forwarded-Ssl": "on"},
        {"X-Forwarded-Protocol": "ssl"},
        {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"},
    ],
    ids=["proto", "ssl", "protocol", "proto+ssl"],
)
def test_a_client_cannot_claim_https_through_the_load_balancer(topology, header):
    assert redirect_scheme(topology.state().port, header) == "http"


def test_a_client_set_script_name_neither_breaks_nor_reroots_the_app(topology):
    port = topology.state().port

    status, headers, body = request(port, "/", {"SCRIPT_NAME": "/x"})
    assert (status, "x-request-id" in headers) == (200, True)
    assert json.loads(body)["instance"] == "replica-1"

    # Served as /healthz if SCRIPT_NAME=/api were taken: the path must stay what was sent.
    assert request(port, "/api" + HEALTH_PATH, {"SCRIPT_NAME": "/api"})[0] == 404


def test_a_foreign_host_header_gets_a_400_instead_of_a_redirect_to_it(topology):
    port = topology.state().port

    status, headers, _ = request(port, "/api/report", {"Host": "evil.example"})
    assert (status, "location" in headers) == (400, False)
    # ... while the name the topology serves on is answered as before
    status, headers, _ = request(port, "/api/report")
    assert (status, headers["location"]) == (308, f"http://127.0.0.1:{port}/api/report/")


# --- /metrics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "//metrics",
        "/metrics/",
        "/%6detrics",
        "/%6D%65trics",
        "/%2Fmetrics",
        "/./metrics",
    ],
)
def test_metrics_are_not_served_through_the_load_balancer_however_spelled(topology, path):
    status, _, body = request(topology.state().port, path)

    assert status == 404, body[:200]
    assert b"pyscale_http_requests_total" not in body


def test_metrics_are_still_served_by_each_replica_directly(topology):
    (replica,) = topology.state().replicas

    status, _, body = request(replica.port, "/metrics")

    assert status == 200
    assert b"pyscale_http_requests_total" in body


# --- bodies ---------------------------------------------------------------------------------


def test_an_oversized_body_is_refused_before_it_is_read_or_reaches_a_replica(topology):
    port = topology.state().port
    announced = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
    chunk = b"x" * (MAX_REQUEST_BODY_BYTES + 1)
    chunked = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(chunk)
        + chunk
        + b"\r\n0\r\n\r\n"
    )

    # Nothing of the body is sent: the answer comes from the Content-Length alone
    assert raw_status(port, announced % (MAX_REQUEST_BODY_BYTES + 1)) == 413
    assert raw_status(port, chunked) == 413
    assert not [line for line in access_log(topology, "replica-1") if line["method"] == "POST"]
    # ... while a small body still reaches the app (which takes none: 405)
    assert raw_status(port, announced % 2 + b"ok") == 405


# --- slow clients ---------------------------------------------------------------------------


def test_slow_body_clients_leave_the_health_path_answering_and_every_replica_up(
    start_topology: StartTopology,
) -> None:
    # GIVEN two replicas behind HAProxy, one gunicorn worker of four threads each
    topology = start_topology(replicas=2, workers=1)
    state, api = topology.state(), topology.api
    # WHEN 16 clients each announce a 1000-byte body to the health path and send it a
    # byte every 2 s (today's attack: more slow requests than the replicas have threads)
    with SlowBodyClients(state.port, connections=16, announced_bytes=1000) as attack:
        # ... for longer than HAProxy's checks need to take a starved replica out
        attack.wait_for_rounds(int(HealthCheck().detection_seconds // 2) + 2)
        health = request(state.port, HEALTH_PATH)[0]
        servers = api.server_stats()
        # THEN HAProxy, not a replica, ends every slow request once its time is up
        attack.wait_for_answers(16)

    assert health == 200
    assert {name: (s.status, s.check_passed) for name, s in servers.items()} == {
        "replica-1": ("UP", True),
        "replica-2": ("UP", True),
    }
    assert set(attack.answers) == {408}, attack.answers
    # ... and no replica ever saw one of them: HAProxy buffers a body whole before sending it on
    for replica in ("replica-1", "replica-2"):
        assert not [line for line in access_log(topology, replica) if line["method"] == "POST"]


def test_a_replica_busy_with_slow_requests_keeps_a_thread_for_its_health_check(
    start_topology: StartTopology,
) -> None:
    # GIVEN one replica of one worker with four threads, whose report requests all wait on a
    # single-flight lock the test holds (the way a slow dependency holds threads)
    topology = start_topology(replicas=1, workers=1, CACHE_LOCK_TIMEOUT_SECONDS="30")
    state, api = topology.state(), topology.api
    cache = redis.Redis.from_url(state.redis_url)
    key = f"pyscale:dev:report:v{REPORT_FORMAT_VERSION}:77"
    cache.set(key + ":lock", "held-by-the-test", px=60_000)

    def checks_answered() -> int:
        return sum(line["path"] == HEALTH_PATH for line in access_log(topology, "replica-1"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        # WHEN twice as many such requests arrive as the replica has threads
        waiting = [pool.submit(request, state.port, "/api/report/77") for _ in range(8)]
        wait_until(
            lambda: api.server_stats()["replica-1"].current_sessions == 3,
            15,
            "HAProxy to admit three requests (one thread fewer than the replica has)",
        )
        # THEN the replica goes on answering HAProxy's checks while they wait...
        answered = checks_answered()
        wait_until(lambda: checks_answered() >= answered + 3, 15, "three more health checks")
        server = api.server_stats()["replica-1"]
        # ... and once the value arrives every request is served
        cache.set(key, build_report(77))
        cache.delete(key + ":lock")
        statuses = [future.result(timeout=30)[0] for future in waiting]

    assert (server.status, server.check_passed) == ("UP", True)
    assert statuses == [200] * 8
