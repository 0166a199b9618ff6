"""Per-request bookkeeping as one plain WSGI middleware: request id and request metrics.

A middleware rather than Flask before/after_request hooks because this runs on every
request, including the near-cache hits the benchmark holds to 0.9x a bare Flask view:
hooks go through Flask's context-local proxies (g, request) several times per request, a
middleware reads the WSGI environ directly. Measured in bench/bench_app.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flask import Request
from prometheus_client import Counter, Histogram, Summary
from werkzeug.routing import Rule

from app.logs import REQUEST_ID_HEADER, request_id_from
from app.metrics import Metrics

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REQUEST_ID_ENVIRON_KEY = "pyscale.request_id"
ROUTE_ENVIRON_KEY = "pyscale.route"
# Any other method string a client sends is labelled "other", so it can't add series.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMiddleware:
    def __init__(self, wsgi_app: WSGIApplication, metrics: Metrics) -> None:
        self.wsgi_app = wsgi_app
        self.metrics = metrics
        # prometheus_client's labels() costs microseconds per call; keep the children.
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram, Summary]] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        environ[REQUEST_ID_ENVIRON_KEY] = request_id
        status_line = "500"

        def start_response_with_id(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            nonlocal status_line
            status_line = status
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, start_response_with_id)
        # The route template ("/api/report/<text:raw_n>"), not the path, so label
        # cardinality stays bounded; RouteLabellingRequest records it.
        endpoint = environ.get(ROUTE_ENVIRON_KEY, "unmatched")
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in _KNOWN_METHODS:
            method = "other"
        counter, histogram, summary = self._series(endpoint, method, status_line[:3])
        elapsed = time.perf_counter() - started
        counter.inc()
        histogram.observe(elapsed)
        summary.observe(elapsed)
        return body

    def _series(
        self, endpoint: str, method: str, status: str
    ) -> tuple[Counter, Histogram, Summary]:
        key = (endpoint, method, status)
        series = self._children.get(key)
        if series is None:
            series = (
                self.metrics.requests.labels(endpoint, method, status),
                self.metrics.latency.labels(endpoint, status),
                self.metrics.latency_summary.labels(endpoint),
            )
            self._children[key] = series
        return series


class RouteLabellingRequest(Request):
    """Flask's Request, also noting the matched route template in the WSGI environ.

    Flask detaches its Request from the environ when a request ends, so the middleware reads
    the route from there. Done where Flask assigns the rule rather than in a before_request
    hook: no extra hook dispatch or context-local lookups on every request.
    """

    _url_rule: Rule | None = None

    @property
    def url_rule(self) -> Rule | None:
        return self._url_rule

    @url_rule.setter
    def url_rule(self, rule: Rule | None) -> None:
        self._url_rule = rule
        if rule is not None:
            self.environ[ROUTE_ENVIRON_KEY] = rule.rule
