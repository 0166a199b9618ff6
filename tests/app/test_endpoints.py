"""The app's HTTP contract, in process (no Redis needed unless said)."""

from __future__ import annotations

import json
import logging
import os

import pytest

from app.contract import HEALTH_PATH, READY_PATH
from app.instance import InstanceIdentity
from app.logs import JsonFormatter, request_id_from
from app.report import MAX_N, build_report
from app.settings import load_settings
from tests.app.conftest import metric


@pytest.fixture
def client(app_factory):
    return app_factory().test_client()


def test_health_path_answers_without_checking_dependencies(app_factory):
    # An unreachable Redis must not fail liveness (the load balancer's check).
    app = app_factory("redis://127.0.0.1:1")
    response = app.test_client().get(HEALTH_PATH)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_index_says_which_release_machine_and_worker_answered(app_factory):
    app = app_factory(APP_VERSION="2024.11.3", INSTANCE_NAME="replica-2")
    assert app.test_client().get("/").get_json() == {
        "version": "2024.11.3",
        "instance": "replica-2",
        "pid": os.getpid(),
    }


def test_the_ec2_instance_id_wins_over_the_replica_name(app_factory):
    app = app_factory(INSTANCE_ID="i-0123456789abcdef0", INSTANCE_NAME="replica-2")
    assert app.test_client().get("/").get_json()["instance"] == "i-0123456789abcdef0"


def test_nitro_asset_tag_gives_the_instance_id_without_network(tmp_path):
    (tmp_path / "board_asset_tag").write_text("i-0abc1234def567890\n")
    (tmp_path / "sys_vendor").write_text("Amazon EC2\n")
    identity = InstanceIdentity(load_settings({"INSTANCE_NAME": "x"}), dmi_dir=tmp_path)
    assert identity.name == "i-0abc1234def567890"


def test_off_ec2_the_hostname_is_the_last_resort(tmp_path):
    identity = InstanceIdentity(load_settings({}), dmi_dir=tmp_path)
    assert identity.name == os.uname().nodename


@pytest.mark.parametrize(
    "raw_n",
    [
        *("abc", "-5", "0", str(MAX_N + 1), "99999999999999999999", "1.5", "1e3", "%20", "1/2"),
        "",  # the bare prefix
        # Unicode digits int() would accept: fullwidth 12, Arabic-Indic 3, superscript 2
        *("%EF%BC%91%EF%BC%92", "%D9%A3", "%C2%B2"),
        # a sign, surrounding whitespace, and a string far longer than any allowed n
        *("+5", "%205", "5%20", "5%0A", "1" * 10_000),
    ],
    ids=lambda raw_n: raw_n[:24] or "empty",
)
def test_a_report_size_that_is_not_an_allowed_integer_is_a_400_json_error(client, raw_n):
    response = client.get(f"/api/report/{raw_n}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_report_size"
    assert f"1 to {MAX_N}" in response.get_json()["detail"]


@pytest.mark.parametrize("n", [1, 1000, MAX_N])
def test_allowed_report_sizes_are_served_deterministically(client, n):
    response = client.get(f"/api/report/{n}")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.data == build_report(n)
    assert response.get_json()["n"] == n


def test_unknown_paths_get_a_json_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_readiness_is_503_while_starting_and_while_draining(app_factory):
    app = app_factory()
    lifecycle = app.extensions["pyscale"].lifecycle
    assert app.test_client().get(READY_PATH).status_code == 200

    lifecycle.begin_draining()

    response = app.test_client().get(READY_PATH)
    assert response.status_code == 503
    assert response.get_json() == {"status": "draining"}


def test_a_sane_request_id_is_echoed_and_a_missing_one_generated(client):
    given = client.get("/", headers={"X-Request-ID": "req-123"})
    generated = client.get("/")
    oversized = client.get("/", headers={"X-Request-ID": "x" * 500})
    odd = client.get("/", headers={"X-Request-ID": '{"json": 1}'})

    assert given.headers["X-Request-ID"] == "req-123"
    assert len(generated.headers["X-Request-ID"]) == 32
    assert len(oversized.headers["X-Request-ID"]) == 32
    assert len(odd.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize("trailing", ["\n", "\r\n", "\nforged log line"])
def test_a_request_id_with_a_trailing_newline_is_replaced_not_echoed(client, trailing):
    # gunicorn refuses a newline in a header value, but the WSGI environ can still carry one
    # (another server, a middleware); `$` matched before a final newline and echoed it.
    response = client.get("/", environ_overrides={"HTTP_X_REQUEST_ID": "req-1" + trailing})

    assert response.status_code == 200
    assert len(response.headers["X-Request-ID"]) == 32
    assert request_id_from("req-1" + trailing) != "req-1" + trailing


def test_app_log_lines_are_json_with_the_request_id(app_factory):
    # A Redis that refuses connections makes the cache log a warning inside the request.
    app = app_factory("redis://127.0.0.1:1")
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(JsonFormatter().format(record))

    handler = Collect()
    logging.getLogger("app").addHandler(handler)
    try:
        app.test_client().get("/api/report/9", headers={"X-Request-ID": "abc-1"})
    finally:
        logging.getLogger("app").removeHandler(handler)

    lines = [json.loads(record) for record in records]
    warning = next(line for line in lines if line["message"].startswith("redis error"))
    assert warning["request_id"] == "abc-1"
    assert warning["level"] == "WARNING"
    assert "Connection" in warning["error"]


def test_metrics_count_requests_by_route_template_and_status(client):
    for path in ["/api/report/5", "/api/report/6", "/api/report/abc", "/nope"]:
        client.get(path)
    app = client.application
    route = "/api/report/<text:raw_n>"

    def requests(endpoint, status):
        labels = {"endpoint": endpoint, "method": "GET", "status": status}
        return metric(app, "pyscale_http_requests_total", labels)

    assert requests(route, "200") == 2
    assert requests(route, "400") == 1
    assert requests("unmatched", "404") == 1
    latency = {"endpoint": route, "status": "200"}
    assert metric(app, "pyscale_http_request_duration_seconds_count", latency) == 2
    exposition = client.get("/metrics").data.decode()
    assert "pyscale_cache_misses_total" in exposition
    assert "pyscale_cache_hits_total" in exposition


def redirect_for_host(app, host: str) -> tuple[int, str | None]:
    """GET /api/report redirects (308) to an absolute URL built from the Host header."""
    response = app.test_client().get("/api/report", headers={"Host": host})
    return response.status_code, response.headers.get("Location")


def test_with_trusted_hosts_a_foreign_host_gets_a_400_not_a_redirect_to_it(app_factory):
    app = app_factory(TRUSTED_HOSTS="app.example.com,.example.org,127.0.0.1")

    status, location = redirect_for_host(app, "evil.example")
    refused = app.test_client().get("/", headers={"Host": "app.example.com.evil.example"})

    assert (status, location) == (400, None)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "bad_request"
    assert "X-Request-ID" in refused.headers
    assert redirect_for_host(app, "app.example.com") == (308, "http://app.example.com/api/report/")
    assert redirect_for_host(app, "shop.example.org")[0] == 308
    assert redirect_for_host(app, "127.0.0.1:8000")[0] == 308


def test_without_trusted_hosts_any_host_is_answered_as_flask_does(app_factory):
    # Why the variable exists: the redirect goes wherever the client's Host says.
    assert redirect_for_host(app_factory(), "evil.example") == (
        308,
        "http://evil.example/api/report/",
    )
