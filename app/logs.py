"""Structured logging: one JSON object per line, each carrying the request id.

The app's own log lines, gunicorn's error log and gunicorn's access log all go through
JsonFormatter, so `journalctl -o cat | jq` (EC2) and `docker logs`-style collectors get one
shape. The request id is the caller's X-Request-ID when it is sane, else a fresh one; it is
echoed back in the response header so a client can quote it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from gunicorn.glogging import Logger as GunicornLogger

if TYPE_CHECKING:
    from datetime import timedelta

    from gunicorn.config import Config
    from gunicorn.http import Request
    from gunicorn.http.wsgi import Response

REQUEST_ID_HEADER = "X-Request-ID"
# Anything else (too long, odd characters) is replaced, so a client can't inject log lines.
# Matched with fullmatch: `$` would also match before a trailing newline ("id\n").
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Attributes every LogRecord has; everything else passed via `extra=` lands in the JSON.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


def request_id_from(header_value: str | None) -> str:
    if header_value and _SAFE_REQUEST_ID.fullmatch(header_value):
        return header_value
    return os.urandom(16).hex()  # as unique as a uuid4, a third of the cost


def current_request_id() -> str | None:
    """The id of the request being served on this thread, if any."""
    # Imported here so gunicorn's master (which uses JsonFormatter) never imports Flask.
    from flask import has_request_context, request

    if has_request_context():
        return request.environ.get("pyscale.request_id")
    return None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None)
        if request_id is None and "flask" in sys.modules:
            request_id = current_request_id()
        entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _AppStdoutHandler(logging.StreamHandler[TextIO]):
    """The handler configure_app_logging adds: its type tells a second call it is there."""


def configure_app_logging(level: str) -> None:
    """Send the app's loggers (the `app` package) to stdout as JSON lines."""
    logger = logging.getLogger("app")
    logger.setLevel(level)
    if not any(isinstance(h, _AppStdoutHandler) for h in logger.handlers):
        handler = _AppStdoutHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.propagate = False


class JsonGunicornLogger(GunicornLogger):
    """gunicorn's logger with JSON error and access lines (logger_class in gunicorn.conf.py).

    The access line is built from a dict and json.dumps'd rather than with
    access_log_format, because a format string can't escape quotes in paths or user agents.
    """

    def setup(self, cfg: Config) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(
        self, resp: Response, req: Request, environ: Mapping[str, Any], request_time: timedelta
    ) -> None:
        if not self.access_log_enabled:
            return
        response_headers = {name.lower(): value for name, value in (resp.headers or ())}
        request_id = response_headers.get("x-request-id") or environ.get("HTTP_X_REQUEST_ID")
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        self.access_log.info(
            "request",
            extra={
                "request_id": request_id,
                "remote_addr": environ.get("REMOTE_ADDR"),
                "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "query": environ.get("QUERY_STRING") or None,
                "status": int(status) if isinstance(status, str) and status.isdigit() else status,
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "user_agent": environ.get("HTTP_USER_AGENT"),
                "x_cache": response_headers.get("x-cache"),
            },
        )
