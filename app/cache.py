"""Cache-aside that survives losing Redis: near cache -> Redis (single-flight) -> compute.

Read path for one key:
1. Near cache: a bounded, per-process LRU of ready-to-send bytes. Safe because a value is a
   pure function of its key, and every key carries the release (APP_VERSION) and the report
   format version — a deploy changes the key, so an old value is never served for a new one.
2. Redis GET. A hit is copied into the near cache.
3. A miss takes a Redis-held lock (SET NX PX): exactly one caller across all workers and
   instances computes and stores the value; the others poll for it with backoff until the
   lock's timeout, then compute themselves (the holder may have died).
Values are the response bytes themselves (no pickle: nothing executable crosses the cache,
and a hit costs no deserialisation). TTLs get random jitter so keys cached together don't
all expire together.

Redis errors feed a circuit breaker. While it is open no request touches Redis — no
connect timeout per request — and every request computes (and fills the near cache). After
a cool-down one trial call probes Redis; success closes the breaker, so caching resumes by
itself.

Hand-written rather than a library: Flask-Caching has no single-flight lock or breaker and
pickles values; redis-py's client-side caching needs Redis 7.4+. The breaker is ~40 lines,
less than adapting pybreaker (not a dependency) to per-call trial semantics.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.commands.core import Script
from redis.exceptions import ReadOnlyError, RedisClusterException, RedisError

from app.metrics import Metrics
from app.settings import CacheSettings

if TYPE_CHECKING:
    from app.redis_client import RedisClient

log = logging.getLogger(__name__)

# Compare-and-delete: release the lock only if we still hold it (it may have expired and
# been taken by another caller while we computed).
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# RedisCluster raises RedisClusterException (not a RedisError) when no node answers.
REDIS_ERRORS = (RedisError, RedisClusterException)
_FIRST_POLL_SECONDS = 0.002
_MAX_POLL_SECONDS = 0.05


class Outcome(enum.Enum):
    """What the X-Cache response header says."""

    HIT = "hit"
    MISS = "miss"
    BYPASS = "bypass"


@dataclass(frozen=True)
class CacheResult:
    body: bytes
    outcome: Outcome
    layer: str  # near, redis, compute


class NearCache:
    """A thread-safe LRU bounded by the total size of its values (bytes).

    OrderedDict instead of functools.lru_cache: entries are added only after a fetch, carry
    an expiry, and the bound is bytes, not a count.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        if self.max_bytes == 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            value, expires_at = entry
            if expires_at <= time.monotonic():
                del self._entries[key]
                self._size -= len(value)
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._size -= len(previous[0])
            self._entries[key] = (value, time.monotonic() + ttl_seconds)
            self._size += len(value)
            while self._size > self.max_bytes:
                _, (evicted, _) = self._entries.popitem(last=False)
                self._size -= len(evicted)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after N consecutive failures; after a cool-down lets one trial call through."""

    def __init__(self, failure_threshold: int, reset_seconds: float) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        if self._state is BreakerState.CLOSED:  # the hot path takes no lock
            return True
        with self._lock:
            # _opened_at is also when the current trial began: a trial that never reported
            # back (its request died another way) is replaced after one more cool-down.
            now = time.monotonic()
            if now - self._opened_at >= self.reset_seconds:
                self._state = BreakerState.HALF_OPEN  # this caller is the trial
                self._opened_at = now
                return True
            return False

    def record_success(self) -> None:
        if self._state is BreakerState.CLOSED and self._failures == 0:
            return
        with self._lock:
            if self._state is not BreakerState.CLOSED:
                log.info("redis reachable again; circuit closed")
            self._state = BreakerState.CLOSED
            self._failures = 0

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or (
                self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
            ):
                if self._state is BreakerState.CLOSED:
                    log.warning("redis failing; circuit open", extra={"failures": self._failures})
                self._state = BreakerState.OPEN
                self._opened_at = time.monotonic()


def _get(client: RedisClient, key: str) -> bytes | None:
    """GET as bytes: build_client never sets decode_responses, so Redis answers bytes."""
    value = client.get(key)
    assert not isinstance(value, str), "the Redis client must not decode responses"
    return value


class ReportCache:
    """Cache-aside for ready-to-send values; one per app (so one per worker process)."""

    def __init__(
        self,
        settings: CacheSettings,
        metrics: Metrics,
        client_factory: Callable[[], RedisClient] | None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.near = NearCache(settings.near_cache_max_bytes)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_seconds)
        self._client_factory = client_factory
        self._client: RedisClient | None = None
        self._client_lock = threading.Lock()
        self._release_script: Script | None = None
        self._near_hits = metrics.cache_hits.labels("near")
        self._redis_hits = metrics.cache_hits.labels("redis")

    @property
    def enabled(self) -> bool:
        return self._client_factory is not None

    # -- public -----------------------------------------------------------------------------

    def get_or_compute(self, key: str, compute: Callable[[], bytes]) -> CacheResult:
        value = self.near.get(key)
        if value is not None:
            self._near_hits.inc()
            return CacheResult(value, Outcome.HIT, "near")
        if not self.enabled or not self.breaker.allow():
            return self._bypass(key, compute)
        try:
            return self._through_redis(key, compute)
        except REDIS_ERRORS as error:
            self._redis_failed(error)
            return self._bypass(key, compute)

    def ping(self) -> bool | None:
        """Redis reachability for /readyz; None when no Redis is configured. Never raises."""
        if not self.enabled:
            return None
        if not self.breaker.allow():
            return False
        try:
            self._redis().ping()
        except REDIS_ERRORS as error:
            self._redis_failed(error)
            return False
        self.breaker.record_success()
        return True

    # -- internals --------------------------------------------------------------------------

    def _redis(self) -> RedisClient:
        # Built lazily: RedisCluster connects while being constructed, and an app must start
        # (and serve, uncached) while Redis is down. Only called while `enabled`.
        assert self._client_factory is not None
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    client = self._client_factory()
                    self._release_script = client.register_script(_RELEASE_LOCK)
                    self._client = client
        return self._client

    def _through_redis(self, key: str, compute: Callable[[], bytes]) -> CacheResult:
        client = self._redis()
        value = _get(client, key)
        self.breaker.record_success()
        if value is not None:
            return self._redis_hit(key, value)

        lock_key = key + ":lock"
        token = secrets.token_hex(8)
        lock_ms = math.ceil(self.settings.lock_timeout_seconds * 1000)
        if client.set(lock_key, token, nx=True, px=lock_ms):
            # Check again under the lock: the previous holder may have stored the value and
            # released the lock between our GET and our SET NX.
            value = _get(client, key)
            if value is not None:
                self._release(client, lock_key, token)
                return self._redis_hit(key, value)
            return self._compute_and_store(client, key, compute, lock=(lock_key, token))

        # Someone else is computing it: wait for their value rather than duplicating work.
        deadline = time.monotonic() + self.settings.lock_timeout_seconds
        delay = _FIRST_POLL_SECONDS
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, _MAX_POLL_SECONDS)
            value = _get(client, key)
            if value is not None:
                return self._redis_hit(key, value)
            if not client.exists(lock_key):
                value = _get(client, key)  # released between our two reads?
                if value is not None:
                    return self._redis_hit(key, value)
                break  # the holder gave up without storing: compute ourselves
        self.metrics.lock_fallbacks.inc()
        return self._compute_and_store(client, key, compute)

    def _compute_and_store(
        self,
        client: RedisClient,
        key: str,
        compute: Callable[[], bytes],
        lock: tuple[str, str] | None = None,
    ) -> CacheResult:
        """Compute, then store and release; once computed, the value is served even if
        Redis fails now (the failure still counts towards the breaker). `lock` is the
        (key, token) this caller holds, if any."""
        try:
            value = self._compute(compute)
        except BaseException:
            if lock is not None:
                self._release(client, *lock)
            raise
        self.metrics.cache_misses.inc()
        self.near.put(key, value, self.settings.ttl_seconds)
        try:
            client.set(key, value, ex=self._ttl_with_jitter())
        except REDIS_ERRORS as error:
            self._redis_failed(error)
        if lock is not None:
            self._release(client, *lock)
        return CacheResult(value, Outcome.MISS, "compute")

    def _release(self, client: RedisClient, lock_key: str, token: str) -> None:
        """Give the lock back if it is still ours; if Redis is gone, it expires by itself."""
        assert self._release_script is not None  # registered with the client
        try:
            self._release_script(keys=[lock_key], args=[token], client=client)
        except REDIS_ERRORS as error:
            self._redis_failed(error)

    def _redis_hit(self, key: str, value: bytes) -> CacheResult:
        self.near.put(key, value, self.settings.ttl_seconds)
        self._redis_hits.inc()
        return CacheResult(value, Outcome.HIT, "redis")

    def _ttl_with_jitter(self) -> int:
        stretch = random.uniform(0, self.settings.ttl_jitter)  # noqa: S311 (not security)
        return math.ceil(self.settings.ttl_seconds * (1 + stretch))

    def _compute(self, compute: Callable[[], bytes]) -> bytes:
        self.metrics.computations.inc()
        return compute()

    def _bypass(self, key: str, compute: Callable[[], bytes]) -> CacheResult:
        value = self._compute(compute)
        self.near.put(key, value, self.settings.ttl_seconds)
        self.metrics.cache_bypasses.inc()
        return CacheResult(value, Outcome.BYPASS, "compute")

    def _redis_failed(self, error: Exception) -> None:
        self.metrics.cache_errors.inc()
        self.breaker.record_failure()
        if isinstance(error, ReadOnlyError) and self._client is not None:
            # After a failover the primary endpoint's DNS points at the new primary, but
            # pooled connections still talk to the demoted node: drop them so the next
            # connection resolves again.
            pool = getattr(self._client, "connection_pool", None)
            if pool is not None:
                pool.disconnect()
        log.warning("redis error; serving without the shared cache", extra={"error": repr(error)})
