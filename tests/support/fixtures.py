"""pytest fixtures for real servers (registered by tests/conftest.py for the whole suite).

- redis_server: a standalone redis-server for one test (it may stop and restart it)
- tls_redis_server: TLS-only redis-server with AUTH, certificates made by trustme (module)
- redis_cluster: a 3-master cluster created with `redis-cli --cluster create` (module)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import (
    RedisClusterServers,
    RedisServer,
    start_redis,
    start_redis_cluster,
    start_tls_redis,
)


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = start_tls_redis(tmp_path_factory.mktemp("redis-tls"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory) -> Iterator[RedisClusterServers]:
    cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()
