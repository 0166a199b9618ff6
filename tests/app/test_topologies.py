"""The Redis topologies the blueprint deploys: TLS + AUTH, Secrets Manager token, replication
group primary, cluster mode — each a real redis-server."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.stub import Stubber
from redis.cluster import RedisCluster

from app import redis_client
from app.report import build_report
from tests.app.conftest import computations
from tests.support.servers import start_redis, wait_until

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pyscale/redis-auth-AbCdEf"


def key(n: int) -> str:
    return f"pyscale:dev:report:v1:{n}"


def tls_env(server) -> dict[str, str]:
    return {"REDIS_TLS_CA_FILE": str(server.tls.ca_file)}


def test_tls_with_auth_token_caches_across_instances(tls_redis_server, app_factory):
    first = app_factory(tls_redis_server.url, **tls_env(tls_redis_server))
    second = app_factory(tls_redis_server.url, **tls_env(tls_redis_server))

    assert first.test_client().get("/api/report/80").headers["X-Cache"] == "miss"
    assert second.test_client().get("/api/report/80").headers["X-Cache"] == "hit"
    assert tls_redis_server.client().get(key(80)) == build_report(80)
    assert first.test_client().get("/readyz").get_json()["redis"]["status"] == "ok"


def test_a_wrong_auth_token_degrades_instead_of_failing_requests(tls_redis_server, app_factory):
    wrong = tls_redis_server.url.replace(tls_redis_server.password, "not-the-token")
    app = app_factory(wrong, **tls_env(tls_redis_server))

    response = app.test_client().get("/api/report/81")

    assert response.status_code == 200
    assert response.headers["X-Cache"] == "bypass"
    assert app.test_client().get("/readyz").get_json()["status"] == "degraded"


def test_a_server_certificate_from_an_unknown_ca_is_refused(tls_redis_server, app_factory):
    app = app_factory(tls_redis_server.url)  # system CAs only: the test CA is not trusted

    assert app.test_client().get("/api/report/82").headers["X-Cache"] == "bypass"


def test_auth_token_from_secrets_manager_is_fetched_once(tls_redis_server, app_factory):
    secrets = boto3.client(
        "secretsmanager",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stub = Stubber(secrets)
    # Exactly one response: a second fetch would make the stub raise.
    stub.add_response(
        "get_secret_value",
        {"ARN": SECRET_ARN, "SecretString": f'{{"auth_token": "{tls_redis_server.password}"}}'},
        {"SecretId": SECRET_ARN},
    )
    url_without_password = tls_redis_server.url.replace(f":{tls_redis_server.password}@", "")
    with stub:
        # What gunicorn.conf.py does in the master before forking workers:
        redis_client.fetch_auth_token(SECRET_ARN, "eu-west-1", secrets_client=secrets)
        apps = [
            app_factory(
                url_without_password,
                REDIS_AUTH_SECRET_ARN=SECRET_ARN,
                **tls_env(tls_redis_server),
            )
            for _ in range(2)
        ]
        responses = [app.test_client().get("/api/report/83") for app in apps]
        stub.assert_no_pending_responses()

    assert [r.headers["X-Cache"] for r in responses] == ["miss", "hit"]


def test_the_replication_group_primary_endpoint_caches_and_replicas_follow(
    tmp_path, redis_server, app_factory
):
    # Start the replica's full sync at once rather than after Redis's default 5 s delay.
    redis_server.client().config_set("repl-diskless-sync-delay", 0)
    replica = start_redis(
        tmp_path / "replica", extra_args=("--replicaof", "127.0.0.1", str(redis_server.port))
    )
    try:
        app = app_factory(redis_server.url)
        assert app.test_client().get("/api/report/84").headers["X-Cache"] == "miss"

        replicated = wait_until(
            lambda: replica.client().get(key(84)), 10, "the value to reach the replica"
        )
        assert replicated == build_report(84)
    finally:
        replica.stop()


@pytest.fixture
def cluster_app_factory(redis_cluster, app_factory):
    return lambda **env: app_factory(redis_cluster.url, REDIS_CLUSTER="true", **env)


def test_cluster_mode_caches_keys_across_every_master(redis_cluster, cluster_app_factory):
    first, second = cluster_app_factory(), cluster_app_factory()
    sizes = range(90, 110)

    misses = [first.test_client().get(f"/api/report/{n}").headers["X-Cache"] for n in sizes]
    hits = [second.test_client().get(f"/api/report/{n}").headers["X-Cache"] for n in sizes]

    assert set(misses) == {"miss"}
    assert set(hits) == {"hit"}
    direct = RedisCluster.from_url(redis_cluster.url)
    try:
        assert [direct.get(key(n)) for n in sizes] == [build_report(n) for n in sizes]
        owners = {direct.get_node_from_key(key(n)).port for n in sizes}
        assert len(owners) == 3, "the keys should be spread over all three masters"
    finally:
        direct.close()


def test_cluster_mode_single_flight_computes_once(redis_cluster, cluster_app_factory):
    instances = [cluster_app_factory() for _ in range(3)]
    start = threading.Barrier(30)

    def fetch(index: int) -> int:
        client = instances[index % 3].test_client()
        start.wait()
        return client.get("/api/report/1200").status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(fetch, range(30)))

    assert statuses == [200] * 30
    assert sum(computations(app) for app in instances) == 1


def test_a_binary_secret_is_refused_with_a_message_naming_it():
    secrets = boto3.client(
        "secretsmanager",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    binary_arn = SECRET_ARN.replace("redis-auth", "binary")
    stub = Stubber(secrets)
    stub.add_response(
        "get_secret_value", {"ARN": binary_arn, "SecretBinary": b"\x00"}, {"SecretId": binary_arn}
    )
    with stub, pytest.raises(ValueError, match="no SecretString"):
        redis_client.fetch_auth_token(binary_arn, "eu-west-1", secrets_client=secrets)


def test_after_a_failover_the_demoted_primary_costs_no_5xx_and_is_reconnected_away_from(
    tmp_path, redis_server, app_factory
):
    # GIVEN the primary endpoint's node demoted to a replica, as in an ElastiCache failover
    # (there the endpoint's DNS then names the new primary; on loopback the node is promoted
    # back instead, which is what the app sees either way: a writable primary again).
    new_primary = start_redis(tmp_path / "new-primary")
    new_primary.client().config_set("repl-diskless-sync-delay", 0)
    node = redis_server.client()
    try:
        app = app_factory(redis_server.url, NEAR_CACHE_MAX_BYTES="0")
        assert app.test_client().get("/api/report/87").headers["X-Cache"] == "miss"
        node.replicaof("127.0.0.1", new_primary.port)
        wait_until(
            lambda: node.info("replication").get("master_link_status") == "up", 10, "the sync"
        )

        def connections() -> int:
            return node.info("stats")["total_connections_received"]

        # WHEN requests miss and their writes get READONLY
        before = connections()
        responses = [app.test_client().get(f"/api/report/{n}") for n in (88, 89, 90)]

        # THEN they are served, and every READONLY drops the pooled connections, so each next
        # request connects (and resolves the endpoint) again rather than reusing the old node
        assert [(r.status_code, r.headers["X-Cache"]) for r in responses] == [(200, "bypass")] * 3
        assert connections() - before >= 2
        assert computations(app) == 4

        # WHEN the endpoint is writable again, THEN caching resumes with no restart
        node.replicaof("no", "one")
        wait_until(
            lambda: app.test_client().get("/api/report/91").headers["X-Cache"] in ("miss", "hit"),
            10,
            "caching to resume after the failover",
        )
        assert node.get(key(91)) == build_report(91)
    finally:
        new_primary.stop()
