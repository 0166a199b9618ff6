"""create_app: the table of contents of the app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from app.cache import ReportCache
from app.instance import InstanceIdentity
from app.lifecycle import Lifecycle
from app.logs import configure_app_logging
from app.metrics import Metrics
from app.middleware import REQUEST_ID_ENVIRON_KEY, RequestMiddleware, RouteLabellingRequest
from app.redis_client import RedisClient, build_client, fetch_auth_token
from app.settings import Settings, load_settings
from app.views import bp

log = logging.getLogger(__name__)


@dataclass
class AppState:
    """Everything the views share, bound in one place: app.extensions['pyscale']."""

    settings: Settings
    lifecycle: Lifecycle
    metrics: Metrics
    cache: ReportCache
    instance: InstanceIdentity


def create_app(config: Settings | None = None) -> Flask:
    """Build the app from `config`, or from the environment (app/settings.py) when None."""
    settings = config if config is not None else load_settings()
    app = Flask(__name__)
    json_provider = DefaultJSONProvider(app)
    json_provider.sort_keys = False  # keys in the order the views build them
    app.json = json_provider
    # Flask's own check: a request whose Host is not one of these gets a 400 (None: any).
    app.config["TRUSTED_HOSTS"] = list(settings.trusted_hosts) or None
    configure_app_logging(settings.log_level)
    register_extensions(app, settings)
    register_blueprints(app)
    register_errorhandlers(app)
    register_middleware(app)
    app.extensions["pyscale"].lifecycle.mark_serving()
    redis_mode = "off" if settings.redis is None else "cluster" if settings.redis.cluster else "on"
    log.info("app ready", extra={"version": settings.app_version, "redis": redis_mode})
    return app


def register_extensions(app: Flask, settings: Settings) -> None:
    metrics = Metrics()
    app.extensions["pyscale"] = AppState(
        settings=settings,
        lifecycle=Lifecycle(),
        metrics=metrics,
        cache=ReportCache(settings.cache, metrics, _redis_client_factory(settings)),
        instance=InstanceIdentity(settings),
    )


def _redis_client_factory(settings: Settings) -> Callable[[], RedisClient] | None:
    redis_settings = settings.redis
    if redis_settings is None:
        return None
    if redis_settings.iam is not None:
        # Imported here: botocore is loaded only by apps that sign IAM tokens.
        from app.elasticache_iam import ElastiCacheIamCredentialProvider

        # One provider per process: it caches its token, and every connection of the pool
        # (every node's, in cluster mode) asks it when it opens.
        iam = ElastiCacheIamCredentialProvider(
            user_id=redis_settings.iam.user_id,
            replication_group_id=redis_settings.iam.replication_group_id,
            region=redis_settings.iam.region,
        )
        return lambda: build_client(redis_settings, credential_provider=iam)
    password = None
    if redis_settings.auth_secret_arn:
        # Once per process tree: gunicorn.conf.py already fetched it in the master.
        password = fetch_auth_token(redis_settings.auth_secret_arn, settings.aws_region)
    return lambda: build_client(redis_settings, password)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(bp)


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        code = error.name.lower().replace(" ", "_")
        # code is typed int | None; None never reaches here (Flask's handle_http_exception
        # answers a code-less HTTPException itself), so `or 500` only narrows the type.
        return jsonify(error=code, detail=error.description), error.code or 500

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> ResponseReturnValue:
        log.exception("unhandled error")
        request_id = request.environ.get(REQUEST_ID_ENVIRON_KEY)
        return jsonify(error="internal_error", request_id=request_id), 500


def register_middleware(app: Flask) -> None:
    app.request_class = RouteLabellingRequest
    # Flask's documented way to add WSGI middleware is to replace this method.
    app.wsgi_app = RequestMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, app.extensions["pyscale"].metrics
    )
