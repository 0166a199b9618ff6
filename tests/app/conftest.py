"""Helpers for the app's tests: apps built from an environment, metric readers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from flask import Flask

from app.contract import Env
from app.factory import create_app
from app.settings import load_settings


@pytest.fixture(autouse=True)
def _in_process_metrics(monkeypatch):
    # In-process apps keep per-app registries; multiprocess mode is tested through gunicorn.
    monkeypatch.delenv(Env.PROMETHEUS_MULTIPROC_DIR, raising=False)


def build_app(env: Mapping[str, str]) -> Flask:
    """An app configured exactly as the environment `env` would configure it."""
    return create_app(load_settings(dict(env)))


@pytest.fixture
def app_factory() -> Callable[..., Flask]:
    """app_factory(redis_url=None, **variables) -> a new app instance (its own near cache,
    breaker and Redis connections: a stand-in for another worker or machine)."""

    def make(redis_url: str | None = None, **variables: str) -> Flask:
        env = {Env.CIRCUIT_BREAKER_RESET_SECONDS: "0.2", **variables}
        if redis_url is not None:
            env[Env.REDIS_URL] = redis_url
        return build_app(env)

    return make


def metric(app: Flask, name: str, labels: Mapping[str, str] | None = None) -> float:
    value = app.extensions["pyscale"].metrics.registry.get_sample_value(name, dict(labels or {}))
    return value or 0.0


def computations(app: Flask) -> float:
    return metric(app, "pyscale_report_computations_total")
