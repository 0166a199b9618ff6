"""gunicorn started for real with app/gunicorn.conf.py: serving, metrics across workers,
single flight across processes, drain on SIGTERM, and refusing a bad environment."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

from app.contract import HEALTH_PATH, READY_PATH
from app.report import build_report
from tests.support.gunicorn import running_gunicorn, start_gunicorn
from tests.support.secrets_manager import fake_secrets_manager
from tests.support.servers import wait_until


def scrape(base_url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    text = requests.get(base_url + "/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def test_gunicorn_serves_the_health_path_with_json_logs_carrying_request_ids(tmp_path):
    with running_gunicorn(tmp_path) as server:
        health = requests.get(server.url + HEALTH_PATH, timeout=5)
        index = requests.get(server.url + "/", headers={"X-Request-ID": "trace-42"}, timeout=5)
    assert health.status_code == 200
    assert index.json()["instance"]
    lines = [json.loads(line) for line in server.output().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert any(line["path"] == "/" and line["request_id"] == "trace-42" for line in access)
    assert all(line.get("request_id") for line in access)
    assert server.process.returncode == 0


def test_metrics_and_single_flight_hold_across_two_worker_processes(tmp_path, redis_server):
    env = {"WEB_CONCURRENCY": "2", "REDIS_URL": redis_server.url}
    with running_gunicorn(tmp_path, env) as server:
        # GIVEN requests answered by both workers (new connections until both pids are seen)
        pids: set[int] = set()
        sent = 0

        def both_workers_answered() -> bool:
            nonlocal sent
            pids.add(requests.get(server.url + "/", timeout=5).json()["pid"])
            sent += 1
            return len(pids) == 2

        wait_until(both_workers_answered, 20, "both gunicorn workers to answer")

        # WHEN 100 clients miss the same report at once
        start = threading.Barrier(100)

        def fetch(_):
            start.wait()
            return requests.get(server.url + "/api/report/1700", timeout=30)

        with ThreadPoolExecutor(max_workers=100) as pool:
            responses = list(pool.map(fetch, range(100)))
        samples = scrape(server.url)

    # THEN one scrape sees every worker's requests, and the report was computed once
    assert total(samples, "pyscale_http_requests_total", endpoint="/", status="200") == sent
    route = "/api/report/<text:raw_n>"
    assert total(samples, "pyscale_http_requests_total", endpoint=route, status="200") == 100
    assert total(samples, "pyscale_http_request_duration_seconds_count", endpoint=route) == 100
    assert {r.status_code for r in responses} == {200}
    assert {r.content for r in responses} == {build_report(1700)}
    assert total(samples, "pyscale_report_computations_total") == 1
    assert total(samples, "pyscale_cache_misses_total") == 1
    assert total(samples, "pyscale_cache_hits_total") == 99


def test_sigterm_turns_readiness_to_503_and_finishes_the_request_in_flight(tmp_path, redis_server):
    redis = redis_server.client()
    key = "pyscale:dev:report:v1:77"
    # GIVEN a request that is provably in flight: it waits on a single-flight lock we hold
    redis.set(key + ":lock", "test-holds-it", px=30_000)
    env = {"REDIS_URL": redis_server.url, "CACHE_LOCK_TIMEOUT_SECONDS": "30"}
    server = start_gunicorn(tmp_path, env)
    try:
        in_flight: dict[str, requests.Response] = {}
        worker = threading.Thread(
            target=lambda: in_flight.update(
                response=requests.get(server.url + "/api/report/77", timeout=60)
            )
        )
        worker.start()
        wait_until(
            lambda: redis.info("commandstats").get("cmdstat_exists", {}).get("calls", 0) > 0,
            10,
            "the request to wait on the lock",
        )
        keep_alive = requests.Session()
        assert keep_alive.get(server.url + READY_PATH, timeout=5).status_code == 200

        # WHEN gunicorn is told to stop
        server.process.send_signal(signal.SIGTERM)

        # THEN readiness fails on the connection the balancer already has open...
        wait_until(
            lambda: keep_alive.get(server.url + READY_PATH, timeout=5).status_code == 503,
            10,
            "/readyz to answer 503 while draining",
        )
        # ...and the request in flight still completes once its value arrives
        redis.set(key, build_report(77))
        redis.delete(key + ":lock")
        worker.join(timeout=30)
        assert in_flight["response"].status_code == 200
        assert in_flight["response"].content == build_report(77)
        assert server.process.wait(timeout=40) == 0
    finally:
        server.stop()


def exit_status_of_refused_start(server) -> int:
    """gunicorn's exit status once it refuses to start (stopped, and the test failed, if it
    is still running after 30 s)."""
    try:
        return server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.stop()
        raise


def test_gunicorn_refuses_to_start_with_an_invalid_variable_and_names_it(tmp_path):
    server = start_gunicorn(tmp_path, {"CACHE_TTL_SECONDS": "soon"}, wait=False)
    returncode = exit_status_of_refused_start(server)
    assert returncode == 2
    assert "CACHE_TTL_SECONDS='soon'" in server.output()
    assert "Traceback" not in server.output()


SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pyscale/redis-auth-AbCdEf"


def test_the_auth_token_is_fetched_once_by_the_master_for_every_worker(tmp_path, tls_redis_server):
    token = tls_redis_server.password
    url_without_password = tls_redis_server.url.replace(f":{token}@", "")
    with fake_secrets_manager({SECRET_ARN: json.dumps({"auth_token": token})}) as secrets:
        env = {
            **secrets.boto_env(),
            "WEB_CONCURRENCY": "2",
            "REDIS_URL": url_without_password,
            "REDIS_AUTH_SECRET_ARN": SECRET_ARN,
            "REDIS_TLS_CA_FILE": str(tls_redis_server.tls.ca_file),
        }
        with running_gunicorn(tmp_path, env) as server:
            # GIVEN each worker serving a report over its own connection
            cache_by_pid: dict[int, set[str]] = {}

            def both_workers_used_redis() -> bool:
                with requests.Session() as connection:  # one connection = one worker
                    pid = connection.get(server.url + "/", timeout=5).json()["pid"]
                    report = connection.get(server.url + "/api/report/86", timeout=5)
                cache_by_pid.setdefault(pid, set()).add(report.headers["X-Cache"])
                return len(cache_by_pid) == 2

            wait_until(both_workers_used_redis, 20, "both gunicorn workers to serve a report")

    # THEN both workers authenticated to Redis with the one token the master fetched
    assert set().union(*cache_by_pid.values()) <= {"miss", "hit"}, cache_by_pid
    assert secrets.requested == [SECRET_ARN]
    assert token not in server.output()


def test_an_unreadable_auth_token_stops_gunicorn_with_a_clear_message(tmp_path, tls_redis_server):
    other_arn = SECRET_ARN.replace("redis-auth", "other")
    with fake_secrets_manager({other_arn: "x"}) as secrets:
        env = {
            **secrets.boto_env(),
            "REDIS_URL": tls_redis_server.url.replace(f":{tls_redis_server.password}@", ""),
            "REDIS_AUTH_SECRET_ARN": SECRET_ARN,
        }
        server = start_gunicorn(tmp_path, env, wait=False)
        returncode = exit_status_of_refused_start(server)

    assert returncode == 2
    assert "REDIS_AUTH_SECRET_ARN" in server.output()
    assert "ResourceNotFoundException" in server.output()
    assert "Traceback" not in server.output()


def test_no_aws_credentials_to_sign_iam_tokens_stops_gunicorn_with_a_clear_message(
    tmp_path, tls_redis_server, monkeypatch
):
    # No credential anywhere botocore looks, and no instance metadata to ask.
    for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    env = {
        "REDIS_URL": tls_redis_server.url.replace(f":{tls_redis_server.password}@", ""),
        "REDIS_TLS_CA_FILE": str(tls_redis_server.tls.ca_file),
        "REDIS_IAM_USER": "pyscale-prod-app",
        "REDIS_IAM_REPLICATION_GROUP": "pyscale-prod-redis",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    server = start_gunicorn(tmp_path, env, wait=False)
    returncode = exit_status_of_refused_start(server)

    assert returncode == 2
    assert "REDIS_IAM_USER=pyscale-prod-app: cannot sign ElastiCache IAM tokens" in server.output()
    assert "no AWS credentials found" in server.output()
    assert "Traceback" not in server.output()


def test_an_unusable_metrics_directory_stops_gunicorn_naming_the_variable(tmp_path):
    in_the_way = tmp_path / "not-a-directory"
    in_the_way.write_text("")
    server = start_gunicorn(
        tmp_path, {"PROMETHEUS_MULTIPROC_DIR": str(in_the_way / "metrics")}, wait=False
    )
    returncode = exit_status_of_refused_start(server)
    assert returncode == 2
    assert f"PROMETHEUS_MULTIPROC_DIR={in_the_way / 'metrics'}" in server.output()
    assert "Traceback" not in server.output()


def redirect_scheme(base_url: str, headers: dict[str, str] | None = None) -> str:
    """The scheme gunicorn decided the request came over, as the app's own redirect shows it
    (GET /api/report -> 308 to /api/report/, an absolute URL built from wsgi.url_scheme)."""
    response = requests.get(
        base_url + "/api/report",
        headers=headers or {"X-Forwarded-Proto": "https"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 308
    return response.headers["Location"].split("://", 1)[0]


def test_forwarded_headers_are_trusted_only_from_forwarded_allow_ips(tmp_path):
    # The test client connects from 127.0.0.1: the load balancer in the first case only.
    with running_gunicorn(tmp_path / "trusted", {"FORWARDED_ALLOW_IPS": "127.0.0.1"}) as lb:
        assert redirect_scheme(lb.url) == "https"
    with running_gunicorn(tmp_path / "other", {"FORWARDED_ALLOW_IPS": "10.0.0.0/16"}) as other:
        assert redirect_scheme(other.url) == "http"


def test_a_trusted_peer_sets_the_scheme_with_x_forwarded_proto_only_and_no_wsgi_variable(tmp_path):
    # The peer (127.0.0.1) is the trusted load balancer here, so only gunicorn's own
    # settings stand between a header a client slipped through and the WSGI environ.
    with running_gunicorn(tmp_path, {"FORWARDED_ALLOW_IPS": "127.0.0.1"}) as lb:
        # The ALB overwrites X-Forwarded-Proto but passes these two through from the client
        assert redirect_scheme(lb.url, {"X-Forwarded-Ssl": "on"}) == "http"
        assert redirect_scheme(lb.url, {"X-Forwarded-Protocol": "ssl"}) == "http"
        assert redirect_scheme(lb.url, {"X-Forwarded-Proto": "https"}) == "https"
        # ... and a SCRIPT_NAME header neither breaks the app nor re-roots it
        rooted = requests.get(lb.url + "/", headers={"SCRIPT_NAME": "/x"}, timeout=5)
        rerooted = requests.get(lb.url + "/api/healthz", headers={"SCRIPT_NAME": "/api"}, timeout=5)

    assert rooted.status_code == 200
    assert rooted.json()["instance"]
    assert rerooted.status_code == 404
