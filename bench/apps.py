"""The comparison apps bench_app.py serves with the same gunicorn.conf.py as the real app.

- `bench.apps:hello`: a bare Flask view, no hooks, no metrics — the throughput ceiling.
- `bench.apps:create_flask_caching_app()`: the same report view cached the way most Flask
  users would, with Flask-Caching's RedisCache (pickled values, a Redis round trip per hit,
  no single flight, no near cache, no circuit breaker).
"""

from __future__ import annotations

import os

from flask import Flask, jsonify
from flask_caching import Cache

from app.contract import Env
from app.report import InvalidReportSizeError, build_report, parse_report_size


def create_hello_app() -> Flask:
    hello_app = Flask("hello")

    @hello_app.get("/")
    def hello():
        return jsonify(hello="world")

    return hello_app


def create_flask_caching_app() -> Flask:
    flask_caching_app = Flask("flask_caching")
    cache = Cache(
        flask_caching_app,
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": os.environ[Env.REDIS_URL],
            "CACHE_DEFAULT_TIMEOUT": 300,
        },
    )

    @flask_caching_app.get("/api/report/<path:raw_n>")
    @cache.cached()
    def report(raw_n: str):
        try:
            n = parse_report_size(raw_n)
        except InvalidReportSizeError as error:
            return jsonify(error="invalid_report_size", detail=str(error)), 400
        return build_report(n), 200, {"Content-Type": "application/json"}

    return flask_caching_app


hello = create_hello_app()
