# ruff: noqa: N999 (gunicorn's conventional file name is not a module name)
"""gunicorn settings for the reference app — the same file on EC2 (systemd) and on one machine.

Driven only by environment variables (names in app.contract.Env, validated by
app/settings.py), so the boot script and the local runner configure it the same way:

    gunicorn --config app/gunicorn.conf.py app.wsgi:app

Workers: WEB_CONCURRENCY, else `vcpus + 1` where vcpus is what this process may run on
(CPU affinity capped by a cgroup v2 CPU quota). The formula, its measurements and the vCPU
detection live in app/sizing.py, importable without side effects, so `pyscale local`
sizes its replicas with the very same code.

Worker class: `gthread`, WEB_THREADS threads per worker (default 4). On loopback `sync` is no
dearer per request (`bench/bench_app.py --worker-classes gthread,sync`). gthread still wins
where it matters in production, which loopback can't show: sync has no keep-alive, and with
threads a request waiting on the single-flight lock or a Redis timeout holds one thread, not
a whole process. A slow *client* would hold a gthread thread too, which is why gunicorn never
faces clients itself: on EC2 a buffering HAProxy sits in front of it (infra/boot/proxy.py),
locally the topology's HAProxy applies the same rules. docs/gunicorn.md has the reasoning.
"""

from __future__ import annotations

import glob
import os
import signal
import sys
import tempfile
from types import FrameType
from typing import TYPE_CHECKING

from app.contract import GRACEFUL_TIMEOUT_SECONDS, Env
from app.redis_client import fetch_auth_token
from app.settings import SettingsError, load_settings
from app.sizing import workers_for

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

try:
    _settings = load_settings()
except SettingsError as error:
    # A clean message and exit code 2 instead of gunicorn's "Failed to read config file"
    # traceback (SystemExit is not an Exception, so gunicorn lets it through).
    print(f"pyscale app: {error}", file=sys.stderr)
    sys.exit(2)


# -- serving -------------------------------------------------------------------------------
bind = f"0.0.0.0:{_settings.server.port}"
workers = workers_for(_settings.server.web_concurrency)
worker_class = "gthread"
threads = _settings.server.web_threads
# Longer than the load balancer's idle timeout (ALB default 60 s), so the balancer, not
# gunicorn, closes idle connections — otherwise a request can race a closing socket (502).
keepalive = 75
timeout = 30
graceful_timeout = GRACEFUL_TIMEOUT_SECONDS
# Recycle workers now and then to bound slow leaks; the jitter keeps them from all
# restarting at the same moment. High enough that a busy worker restarts every few minutes,
# not every few seconds (each restart empties its near cache).
max_requests = 100_000
max_requests_jitter = 10_000
# X-Forwarded-* are trusted only from the load balancer's addresses (CIDRs allowed)...
forwarded_allow_ips = _settings.server.forwarded_allow_ips
# ...and of them only the one the load balancer sets: X-Forwarded-Proto, which the ALB (and
# the local HAProxy) overwrite with the client's real scheme. gunicorn's default would also
# take X-Forwarded-Ssl and X-Forwarded-Protocol, which the ALB passes through from the client.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
# No header sets WSGI variables: gunicorn's default lets a trusted peer's SCRIPT_NAME and
# PATH_INFO headers through, and HAProxy forwards a client's as they are (a client-chosen
# SCRIPT_NAME re-roots the app: a 500, or /api/healthz served as /healthz). With none
# listed, gunicorn drops every header with an underscore (header_map "drop").
forwarder_headers = ""
# gunicorn >= 25 opens a control socket at one fixed per-user path; replicas on one machine
# would fight over it, and systemd/the local runner already manage the process.
control_socket_disable = True

# -- logs: JSON lines, access log on stdout ------------------------------------------------
logger_class = "app.logs.JsonGunicornLogger"
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level.lower()

# -- metrics: one multiprocess directory per gunicorn master -------------------------------
# Two replicas on one machine bind different ports, so the port keeps their directories
# apart; set PROMETHEUS_MULTIPROC_DIR explicitly (e.g. systemd's RuntimeDirectory) to choose.
# prometheus_client in every worker reads the variable itself.
os.environ[Env.PROMETHEUS_MULTIPROC_DIR] = _settings.server.metrics_dir or os.path.join(
    tempfile.gettempdir(), f"pyscale-metrics-{_settings.server.port}"
)

# -- the Redis AUTH token: fetched once, in the master, inherited by every worker ----------
if _settings.redis is not None and _settings.redis.auth_secret_arn:
    try:
        fetch_auth_token(_settings.redis.auth_secret_arn, _settings.aws_region)
    except Exception as error:  # botocore's errors (access, network, no such secret), bad JSON
        # Stop like a bad variable does: one line naming it, no traceback. The message is
        # botocore's or ours, neither of which carries the secret's value.
        print(
            f"pyscale app: {Env.REDIS_AUTH_SECRET_ARN}={_settings.redis.auth_secret_arn}: "
            f"could not read the Redis AUTH token: {error}",
            file=sys.stderr,
        )
        sys.exit(2)

# -- IAM authentication: the credentials that sign the tokens are there before any worker --
# Without them every cache connection would fail its AUTH and the app would run uncached
# with nothing in its log at start; stop like a bad variable does instead.
if _settings.redis is not None and _settings.redis.iam is not None:
    from app.elasticache_iam import ElastiCacheIamCredentialProvider  # botocore: IAM only

    _iam = _settings.redis.iam
    try:
        ElastiCacheIamCredentialProvider(
            user_id=_iam.user_id, replication_group_id=_iam.replication_group_id,
            region=_iam.region,
        ).get_credentials()  # fmt: skip
    except Exception as error:  # botocore's credential errors, or none found
        print(
            f"pyscale app: {Env.REDIS_IAM_USER}={_iam.user_id}: cannot sign ElastiCache IAM "
            f"tokens: {error}",
            file=sys.stderr,
        )
        sys.exit(2)


def on_starting(server: Arbiter) -> None:
    """Start with an empty metrics directory: files of a previous run's workers would count."""
    directory = os.environ[Env.PROMETHEUS_MULTIPROC_DIR]
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as error:  # a file in the way, a missing parent, a read-only mount
        print(
            f"pyscale app: {Env.PROMETHEUS_MULTIPROC_DIR}={directory}: "
            f"cannot be used as the metrics directory: {error.strerror}",
            file=sys.stderr,
        )
        sys.exit(2)
    # The default lives in a shared temp dir under a predictable name: refuse one that
    # another user created, whose files we would otherwise read and delete.
    if os.stat(directory).st_uid != os.getuid():
        sys.exit(f"pyscale app: {Env.PROMETHEUS_MULTIPROC_DIR}={directory} belongs to another user")
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.remove(stale)


def post_worker_init(worker: Worker) -> None:
    """On SIGTERM, turn /readyz to 503 before gunicorn's own graceful shutdown begins."""
    state = getattr(worker.wsgi, "extensions", {}).get("pyscale")
    if state is None:  # a user's own WSGI app
        return
    gunicorn_handler = signal.getsignal(signal.SIGTERM)
    if not callable(gunicorn_handler):  # every gunicorn worker class installs one
        return

    def drain_then_stop(signum: int, frame: FrameType | None) -> None:
        state.lifecycle.begin_draining()
        gunicorn_handler(signum, frame)

    signal.signal(signal.SIGTERM, drain_then_stop)


def child_exit(server: Arbiter, worker: Worker) -> None:
    """Keep a dead worker's counters but drop its live gauges (prometheus_client docs)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
