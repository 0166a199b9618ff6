"""Prometheus metrics that stay correct across gunicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py always sets it), prometheus_client
keeps each worker's values in memory-mapped files there and /metrics aggregates every
worker's files — so a scrape sees the whole instance, whichever worker answers it. Without
it (a plain `flask run`, in-process tests) each app keeps its own registry.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Summary,
    generate_latest,
    multiprocess,
)

from app.contract import Env

# Latencies from a near-cache hit (~0.1 ms) to a cold report at the size cap (~0.25 s).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The app's metrics, registered in a registry of their own (one per create_app)."""

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get(Env.PROMETHEUS_MULTIPROC_DIR) or None
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "pyscale_http_requests",
            "HTTP requests served, by route template, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pyscale_http_request_duration_seconds",
            "Time spent in the app per request, by route template and status.",
            ["endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # The same observations as a summary (count and sum only): the CloudWatch agent drops
        # Prometheus histograms, and sum / count is the average latency it can publish.
        self.latency_summary = Summary(
            "pyscale_http_request_seconds",
            "Time spent in the app per request, by route template (count and sum).",
            ["endpoint"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "pyscale_cache_hits",
            "Cache hits, by layer: near (this process) or redis.",
            ["layer"],
            registry=self.registry,
        )
        self.cache_misses = Counter(
            "pyscale_cache_misses", "Cache misses (the value was computed).", registry=self.registry
        )
        self.cache_errors = Counter(
            "pyscale_cache_errors",
            "Redis errors (timeouts, refused connections, READONLY after a failover).",
            registry=self.registry,
        )
        self.cache_bypasses = Counter(
            "pyscale_cache_bypasses",
            "Requests served without Redis (no Redis configured, circuit open, or an error).",
            registry=self.registry,
        )
        self.lock_fallbacks = Counter(
            "pyscale_cache_lock_fallbacks",
            "Waiters that gave up on the single-flight lock and computed themselves.",
            registry=self.registry,
        )
        self.computations = Counter(
            "pyscale_report_computations",
            "Reports actually computed (what the cache exists to avoid).",
            registry=self.registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        if self.multiprocess_dir:
            # A fresh registry per scrape, as prometheus_client documents for multiprocess
            # mode: the collector reads every worker's files at collection time.
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
