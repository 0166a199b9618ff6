"""The app's endpoints (one blueprint). Paths the load balancer uses come from app.contract."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, jsonify
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.routing import PathConverter

from app.contract import HEALTH_PATH, METRICS_PATH, READY_PATH
from app.lifecycle import Phase
from app.report import (
    REPORT_FORMAT_VERSION,
    InvalidReportSizeError,
    build_report,
    parse_report_size,
)

if TYPE_CHECKING:
    from app.factory import AppState

bp = Blueprint("app", __name__)


def _state() -> AppState:
    state: AppState = current_app.extensions["pyscale"]
    return state


@bp.get(HEALTH_PATH)
def healthz() -> ResponseReturnValue:
    """Liveness: the process answers HTTP. Checks no dependency, on purpose (see contract)."""
    return jsonify(status="ok")


@bp.get(READY_PATH)
def readyz() -> ResponseReturnValue:
    """Readiness: 200 while this process can serve (degraded included), 503 starting/draining."""
    state = _state()
    phase = state.lifecycle.phase
    if phase is not Phase.SERVING:
        return jsonify(status=phase.value), 503
    reachable = state.cache.ping()
    redis_status = {None: "disabled", True: "ok", False: "unavailable"}[reachable]
    return jsonify(
        status="degraded" if reachable is False else "ready",
        redis={"status": redis_status, "circuit": state.cache.breaker.state.value},
        near_cache={"entries": len(state.cache.near), "bytes": state.cache.near.size_bytes},
    )


@bp.get("/")
def index() -> ResponseReturnValue:
    """Who answered: release, machine (EC2 instance id or replica name) and worker pid."""
    state = _state()
    return jsonify(
        version=state.settings.app_version, instance=state.instance.name, pid=os.getpid()
    )


class AnyTextConverter(PathConverter):
    """Werkzeug's `path` converter, but matching newlines too: its `.` stops at one, so
    `/api/report/5%0A` would fall through to a 404 instead of the view's 400."""

    regex = "(?s:[^/].*?)"


@bp.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    # Runs before the blueprint's rules are added (record order), which need the converter.
    state.app.url_map.converters["text"] = AnyTextConverter


# `<text:raw_n>` accepts any string, so `abc`, `-5`, `1/2` and `5\n` reach the view and get a
# 400 JSON error rather than a 404; the bare prefix is routed too, as an empty n.
@bp.get("/api/report/", defaults={"raw_n": ""})
@bp.get("/api/report/<text:raw_n>")
def report(raw_n: str) -> ResponseReturnValue:
    """The expensive report for n, cache-aside; X-Cache says hit, miss or bypass."""
    try:
        n = parse_report_size(raw_n)
    except InvalidReportSizeError as error:
        return jsonify(error="invalid_report_size", detail=str(error)), 400
    state = _state()
    key = f"pyscale:{state.settings.app_version}:report:v{REPORT_FORMAT_VERSION}:{n}"
    result = state.cache.get_or_compute(key, lambda: build_report(n))
    return Response(
        result.body,
        content_type="application/json",
        headers=[("X-Cache", result.outcome.value), ("X-Cache-Layer", result.layer)],
    )


@bp.get(METRICS_PATH)
def metrics() -> Response:
    """Prometheus exposition for the whole instance (all gunicorn workers)."""
    body, content_type = _state().metrics.exposition()
    return Response(body, content_type=content_type)


def route_templates() -> list[str]:
    """The blueprint's route templates, as request metrics label them (the ``endpoint``
    label): what the CloudWatch dashboard draws one latency line for."""
    from flask import Flask

    probe = Flask(__name__)
    probe.register_blueprint(bp)
    rules = probe.url_map.iter_rules()
    return sorted(r.rule for r in rules if r.endpoint != "static" and r.rule != METRICS_PATH)
