"""Losing Redis: every endpoint still answers, no 5xx, no timeout per request, and recovery."""

from __future__ import annotations

import pytest

from app.report import build_report
from tests.app.conftest import metric
from tests.support.servers import SilentServer, wait_until

ENDPOINTS = ["/", "/healthz", "/readyz", "/metrics", "/api/report/60", "/api/report/61"]


def test_redis_stopped_mid_test_gives_no_5xx_and_caching_resumes_after_restart(
    redis_server, app_factory
):
    app = app_factory(redis_server.url, NEAR_CACHE_MAX_BYTES="0")
    client = app.test_client()
    assert client.get("/api/report/60").headers["X-Cache"] == "miss"

    # WHEN Redis goes away
    redis_server.stop()
    during_outage = [client.get(path) for _ in range(5) for path in ENDPOINTS]

    # THEN everything still answers, reports are computed, and readiness says degraded
    assert all(response.status_code < 500 for response in during_outage)
    reports = [r for r in during_outage if r.request.path.startswith("/api/report/")]
    assert {r.headers["X-Cache"] for r in reports} == {"bypass"}
    assert {r.data for r in reports} == {build_report(60), build_report(61)}
    readiness = client.get("/readyz")
    assert readiness.status_code == 200
    assert readiness.get_json()["status"] == "degraded"
    assert readiness.get_json()["redis"]["status"] == "unavailable"

    # WHEN Redis comes back on the same address
    redis_server.start()

    # THEN, without any restart of the app, reports are cached again
    def cached_again() -> bool:
        return client.get("/api/report/62").headers["X-Cache"] in ("miss", "hit")

    wait_until(cached_again, 10, "the circuit breaker to close after Redis returned")
    assert redis_server.client().get("pyscale:dev:report:v1:62") == build_report(62)
    assert client.get("/readyz").get_json()["status"] == "ready"


def test_an_open_circuit_stops_requests_from_trying_redis(redis_server, app_factory):
    # A cool-down far longer than the test: after the breaker opens, no request may touch Redis.
    app = app_factory(
        redis_server.url,
        NEAR_CACHE_MAX_BYTES="0",
        CIRCUIT_BREAKER_FAILURES="3",
        CIRCUIT_BREAKER_RESET_SECONDS="300",
    )
    redis_server.stop()

    statuses = [app.test_client().get(f"/api/report/{n}").status_code for n in range(1, 31)]

    assert statuses == [200] * 30
    assert metric(app, "pyscale_cache_errors_total") == 3
    assert metric(app, "pyscale_cache_bypasses_total") == 30
    assert app.test_client().get("/readyz").get_json()["redis"]["circuit"] == "open"


def test_the_app_starts_and_serves_while_redis_is_down(redis_server, app_factory):
    url = redis_server.url
    redis_server.stop()

    app = app_factory(url)

    assert app.test_client().get("/api/report/63").status_code == 200
    assert app.test_client().get("/readyz").status_code == 200


def test_a_value_computed_while_redis_dies_is_served_and_computed_once(redis_server, app_factory):
    app = app_factory(redis_server.url, NEAR_CACHE_MAX_BYTES="0")
    cache = app.extensions["pyscale"].cache

    def compute_while_redis_dies() -> bytes:
        redis_server.stop()  # between taking the lock and storing the value
        return b"report"

    result = cache.get_or_compute("pyscale:test:dies-mid-miss", compute_while_redis_dies)

    assert (result.body, result.outcome.value) == (b"report", "miss")
    assert metric(app, "pyscale_report_computations_total") == 1
    assert metric(app, "pyscale_cache_errors_total") >= 1


def test_a_cluster_that_is_down_at_start_degrades_instead_of_failing(app_factory):
    from tests.support.servers import free_port

    app = app_factory(f"redis://127.0.0.1:{free_port()}", REDIS_CLUSTER="true")

    response = app.test_client().get("/api/report/64")

    assert response.status_code == 200
    assert response.headers["X-Cache"] == "bypass"
    assert app.test_client().get("/readyz").get_json()["status"] == "degraded"


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.stop()


@pytest.mark.parametrize("cluster", ["false", "true"])
def test_a_redis_that_accepts_but_never_answers_costs_only_the_breakers_few_timeouts(
    silent_server, app_factory, cluster
):
    # GIVEN a Redis host that is blackholed/hung rather than refusing connections
    app = app_factory(
        silent_server.url,
        REDIS_CLUSTER=cluster,
        NEAR_CACHE_MAX_BYTES="0",
        CIRCUIT_BREAKER_FAILURES="3",
        CIRCUIT_BREAKER_RESET_SECONDS="300",
    )

    # WHEN 30 requests arrive
    responses = [app.test_client().get(f"/api/report/{n}") for n in range(1, 31)]

    # THEN all are served, and only the three that opened the breaker waited on Redis
    assert [(r.status_code, r.headers["X-Cache"]) for r in responses] == [(200, "bypass")] * 30
    wait_until(lambda: silent_server.connections >= 3, 5, "the listener to count the clients")
    assert silent_server.connections == 3
    assert metric(app, "pyscale_cache_errors_total") == 3
    assert app.test_client().get("/readyz").get_json()["status"] == "degraded"
