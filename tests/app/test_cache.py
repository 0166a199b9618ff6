"""Cache-aside against a real redis-server: hits, misses, TTL, isolation, single flight."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.cache import BreakerState, CircuitBreaker, NearCache
from app.report import REPORT_FORMAT_VERSION, build_report
from tests.app.conftest import computations, metric
from tests.support.servers import wait_until

NEAR_OFF = {"NEAR_CACHE_MAX_BYTES": "0"}


def report_key(n: int, version: str = "dev") -> str:
    return f"pyscale:{version}:report:v{REPORT_FORMAT_VERSION}:{n}"


def test_first_request_misses_and_stores_the_exact_response_bytes(redis_server, app_factory):
    app = app_factory(redis_server.url, **NEAR_OFF)
    response = app.test_client().get("/api/report/40")

    assert response.status_code == 200
    assert response.headers["X-Cache"] == "miss"
    stored = redis_server.client().get(report_key(40))
    # Ready-to-send bytes, not a pickle: what Redis holds is what the client received.
    assert stored == response.data == build_report(40)


def test_second_request_hits_redis_then_the_near_cache(redis_server, app_factory):
    app = app_factory(redis_server.url)
    other_instance = app_factory(redis_server.url)
    app.test_client().get("/api/report/41")

    from_redis = other_instance.test_client().get("/api/report/41")
    from_near = other_instance.test_client().get("/api/report/41")

    assert (from_redis.headers["X-Cache"], from_redis.headers["X-Cache-Layer"]) == ("hit", "redis")
    assert (from_near.headers["X-Cache"], from_near.headers["X-Cache-Layer"]) == ("hit", "near")
    assert from_redis.data == from_near.data == build_report(41)
    assert computations(other_instance) == 0
    assert metric(other_instance, "pyscale_cache_hits_total", {"layer": "redis"}) == 1
    assert metric(other_instance, "pyscale_cache_hits_total", {"layer": "near"}) == 1


def test_a_value_cached_through_one_instance_is_a_hit_through_another(redis_server, app_factory):
    first, second = app_factory(redis_server.url), app_factory(redis_server.url)

    assert first.test_client().get("/api/report/42").headers["X-Cache"] == "miss"
    assert second.test_client().get("/api/report/42").headers["X-Cache"] == "hit"
    assert computations(first) + computations(second) == 1


def test_ttl_is_the_configured_lifetime_stretched_by_at_most_the_jitter(redis_server, app_factory):
    app = app_factory(redis_server.url, CACHE_TTL_SECONDS="100", CACHE_TTL_JITTER="0.5")
    client = redis_server.client()
    for n in range(1, 21):
        app.test_client().get(f"/api/report/{n}")

    ttls = [client.ttl(report_key(n)) for n in range(1, 21)]

    assert all(99 <= ttl <= 150 for ttl in ttls), ttls
    assert len(set(ttls)) > 1, "jitter should spread expiry times"


def test_an_expired_value_is_computed_again(redis_server, app_factory):
    app = app_factory(redis_server.url, CACHE_TTL_SECONDS="1", CACHE_TTL_JITTER="0", **NEAR_OFF)
    assert app.test_client().get("/api/report/43").headers["X-Cache"] == "miss"
    assert app.test_client().get("/api/report/43").headers["X-Cache"] == "hit"

    wait_until(lambda: not redis_server.client().exists(report_key(43)), 5, "the key to expire")

    assert app.test_client().get("/api/report/43").headers["X-Cache"] == "miss"
    assert computations(app) == 2


def test_keys_never_serve_another_reports_data(redis_server, app_factory):
    app = app_factory(redis_server.url)
    bodies = {n: app.test_client().get(f"/api/report/{n}").data for n in (7, 70, 700)}
    again = {n: app.test_client().get(f"/api/report/{n}").data for n in (7, 70, 700)}

    assert bodies == again == {n: build_report(n) for n in (7, 70, 700)}
    assert len(set(bodies.values())) == 3


def test_a_new_app_version_does_not_see_the_previous_releases_values(redis_server, app_factory):
    old = app_factory(redis_server.url, APP_VERSION="1.0.0")
    new = app_factory(redis_server.url, APP_VERSION="1.0.1")
    old.test_client().get("/api/report/44")

    assert new.test_client().get("/api/report/44").headers["X-Cache"] == "miss"
    assert redis_server.client().exists(report_key(44, "1.0.0"), report_key(44, "1.0.1")) == 2


def test_100_concurrent_misses_of_one_key_compute_once_across_instances(redis_server, app_factory):
    # Four app instances (own near caches, own connection pools) stand in for workers on
    # different machines; only the Redis lock can coordinate them.
    instances = [app_factory(redis_server.url) for _ in range(4)]
    start = threading.Barrier(100)

    def fetch(index: int):
        client = instances[index % 4].test_client()
        start.wait()
        response = client.get("/api/report/1500")
        return response.status_code, response.headers["X-Cache"], response.data

    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(fetch, range(100)))

    assert sum(computations(app) for app in instances) == 1
    assert {status for status, _, _ in results} == {200}
    assert sorted(cache for _, cache, _ in results).count("miss") == 1
    assert {body for _, _, body in results} == {build_report(1500)}


def test_waiters_compute_themselves_when_the_lock_holder_never_delivers(redis_server, app_factory):
    # GIVEN a lock held by a caller that died before storing the value
    redis_server.client().set(report_key(45) + ":lock", "dead-holder", px=300)
    app = app_factory(redis_server.url, CACHE_LOCK_TIMEOUT_SECONDS="0.3", **NEAR_OFF)

    # WHEN a request misses
    response = app.test_client().get("/api/report/45")

    # THEN it gives up waiting after the lock's timeout and serves (and stores) the report
    assert response.status_code == 200
    assert response.data == build_report(45)
    assert metric(app, "pyscale_cache_lock_fallbacks_total") == 1
    assert redis_server.client().get(report_key(45)) == build_report(45)


def test_without_redis_configured_reports_are_served_and_kept_in_the_near_cache(app_factory):
    app = app_factory()
    first = app.test_client().get("/api/report/46")
    second = app.test_client().get("/api/report/46")

    assert first.headers["X-Cache"] == "bypass"
    assert (second.headers["X-Cache"], second.headers["X-Cache-Layer"]) == ("hit", "near")
    assert app.test_client().get("/readyz").get_json()["redis"]["status"] == "disabled"


# -- the near cache and the breaker on their own ------------------------------------------


def test_near_cache_stays_within_its_byte_budget_evicting_the_least_recently_used():
    near = NearCache(max_bytes=30)
    near.put("a", b"x" * 10, 60)
    near.put("b", b"y" * 10, 60)
    near.put("c", b"z" * 10, 60)
    assert near.get("a") == b"x" * 10  # a is now the most recently used

    near.put("d", b"w" * 10, 60)

    assert near.size_bytes == 30
    assert near.get("b") is None
    assert [near.get(k) is not None for k in ("a", "c", "d")] == [True, True, True]


def test_near_cache_never_holds_a_value_larger_than_its_budget():
    near = NearCache(max_bytes=5)
    near.put("big", b"123456", 60)
    assert near.get("big") is None
    assert near.size_bytes == 0


def test_near_cache_forgets_expired_values():
    near = NearCache(max_bytes=100)
    near.put("k", b"v", ttl_seconds=-1)
    assert near.get("k") is None
    assert len(near) == 0


@pytest.mark.parametrize("threshold", [1, 3])
def test_breaker_opens_after_consecutive_failures_and_closes_after_a_good_trial(threshold):
    breaker = CircuitBreaker(failure_threshold=threshold, reset_seconds=0)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN

    assert breaker.allow()  # reset_seconds=0: the cool-down is over, this is the trial
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_breaker_reopens_when_the_trial_fails():
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=0)
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_breaker_replaces_a_trial_that_never_reported_back():
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=0)
    breaker.record_failure()
    assert breaker.allow()  # the trial, whose request then dies without a verdict

    assert breaker.allow()  # after another cool-down (0 here) a new trial goes through


def test_breaker_stays_open_during_the_cool_down():
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=3600)
    breaker.record_failure()
    assert not breaker.allow()


def test_only_one_trial_at_a_time_while_half_open():
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=3600)
    breaker.record_failure()
    breaker._opened_at -= 3600  # the cool-down has passed
    assert breaker.allow()
    assert not breaker.allow()
