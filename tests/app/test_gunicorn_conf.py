"""app/gunicorn.conf.py read the way gunicorn reads it: sizing and settings from the env."""

from __future__ import annotations

import runpy

import pytest

from app import sizing
from app.contract import GRACEFUL_TIMEOUT_SECONDS
from tests.support.gunicorn import GUNICORN_CONF


@pytest.fixture
def read_conf(monkeypatch, tmp_path):
    def read(**env: str) -> dict:
        for name in ("WEB_CONCURRENCY", "WEB_THREADS", "PORT", "FORWARDED_ALLOW_IPS"):
            monkeypatch.delenv(name, raising=False)
        # Set explicitly so reading the config can't add it to this process's environment.
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(GUNICORN_CONF))

    return read


def test_workers_default_to_one_per_vcpu_plus_one(read_conf):
    conf = read_conf()
    assert conf["workers"] == sizing.available_vcpus() + 1
    assert sizing.default_workers(4) == 5


def test_web_concurrency_overrides_the_formula(read_conf):
    assert read_conf(WEB_CONCURRENCY="7")["workers"] == 7


def test_bind_threads_and_trusted_proxies_come_from_the_environment(read_conf):
    conf = read_conf(PORT="9123", WEB_THREADS="8", FORWARDED_ALLOW_IPS="10.0.0.0/16")
    assert conf["bind"] == "0.0.0.0:9123"
    assert conf["threads"] == 8
    assert conf["forwarded_allow_ips"] == "10.0.0.0/16"


def test_shutdown_and_recycling_follow_the_contract(read_conf):
    conf = read_conf()
    assert conf["graceful_timeout"] == GRACEFUL_TIMEOUT_SECONDS
    assert conf["max_requests"] > 0
    assert 0 < conf["max_requests_jitter"] < conf["max_requests"]
    assert conf["worker_class"] == "gthread"
    assert conf["accesslog"] == "-"
