"""HAProxy, set up the way the ALB and its target group are, and its runtime API.

The rules are the target group's: round robin over the replicas, an HTTP health check on
the app's health path, a drain that gives in-flight requests the app's graceful timeout
(the ALB's deregistration delay is the same figure), and a retry on another replica when
a connection to one fails. Two things differ on purpose: the check runs every second
(the ALB's minimum is 5 s) so a local rollout takes seconds, and a replica that refuses a
connection is marked down at once (`observe layer4`) instead of after the next checks.

In front of the replicas it also applies the request rules every instance's own proxy
applies on AWS (infra/boot/proxy.py: bounded and buffered requests, no oversized bodies, no
client-set WSGI or scheme headers, no /metrics), and, as the edge, sets X-Forwarded-Proto
itself as the ALB does. Its stats page shows no version and asks for the password `up`
prints: on a shared machine any local user can reach a loopback port.
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass
from pathlib import Path

from app.contract import GRACEFUL_TIMEOUT_SECONDS, HEALTH_PATH
from infra.boot import proxy
from pyscale.local.errors import LocalTopologyError

BACKEND = "replicas"
FRONTEND = "web"
STATS_USER = "pyscale"


@dataclass(frozen=True)
class HealthCheck:
    """The target group's health check, in HAProxy's terms."""

    interval_ms: int = 1000
    healthy_threshold: int = 2  # HAProxy `rise`
    unhealthy_threshold: int = 2  # HAProxy `fall`
    timeout_ms: int = 1000

    @property
    def detection_seconds(self) -> float:
        """Worst case from a replica dying to HAProxy taking it out by checks alone."""
        return self.interval_ms * self.unhealthy_threshold / 1000 + self.timeout_ms / 1000


@dataclass(frozen=True)
class Backend:
    """One replica as HAProxy sees it."""

    name: str
    port: int


def server_options(admitted_requests: int, health_check: HealthCheck = HealthCheck()) -> str:
    """Every replica's server settings: the config's `default-server` line, and spelled
    out again for a replica added at runtime (HAProxy 2.6 applies no `default-server` to
    servers added with `add server`)."""
    check = health_check
    return (
        f"inter {check.interval_ms}ms fastinter {check.interval_ms}ms "
        f"downinter {check.interval_ms}ms rise {check.healthy_threshold} "
        f"fall {check.unhealthy_threshold} observe layer4 error-limit 1 on-error mark-down "
        # app.sizing.admitted_requests: one thread fewer than the replica has, the rest
        # wait in HAProxy's queue, not in gunicorn's. Health checks don't count against
        # maxconn, so a replica busy with slow requests still has a thread to answer its
        # check instead of being taken out for being busy.
        f"maxconn {admitted_requests}"
    )


def render_config(
    *,
    port: int,
    stats_port: int,
    socket_path: Path,
    backends: list[Backend],
    admitted_requests: int,
    stats_password: str,
    health_check: HealthCheck = HealthCheck(),
) -> str:
    """The whole haproxy.cfg for the topology (validated by `haproxy -c` before use).

    It lists the replicas `up` starts with; `roll` adds and removes replicas at runtime
    (`add server`/`del server`), so after a roll HAProxy's servers differ from the file,
    as an ALB target group's targets change under an instance refresh.
    """
    default_server = server_options(admitted_requests, health_check)
    indent = "\n    "
    servers = "\n".join(
        f"    server {backend.name} 127.0.0.1:{backend.port} check" for backend in backends
    )
    return f"""\
# Rendered by pyscale (pyscale/local/haproxy.py); rewritten on every `pyscale local up`.
# `pyscale local roll` adds and removes replicas at runtime: `show stat` has the current ones.
global
    maxconn 4096
    # The runtime API: `pyscale local status|roll` read stats and drain replicas here.
    stats socket {socket_path} mode 600 level admin
    # Soft stop (SIGUSR1) lets in-flight requests finish, as long as the app's drain.
    hard-stop-after {GRACEFUL_TIMEOUT_SECONDS}s
    # Notices only: replicas going up/down and stops, not one line per request.
    log stdout format raw daemon notice

defaults
    mode http
    log global
    option dontlognull
    option forwardfor
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
    timeout check {health_check.timeout_ms}ms
    {indent.join(proxy.defaults_timeouts())}
    # How long a request may wait for a free replica thread (see maxconn below).
    timeout queue 30s
    # A request whose connection to a replica fails (refused: the replica just died or is
    # restarting) goes to another replica instead of failing: the ALB does the same for
    # targets that refuse connections.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend {FRONTEND}
    bind 127.0.0.1:{port}
    # Only idempotent methods are retried after the request reached a replica.
    http-request disable-l7-retry unless METH_GET
    # The edge says which scheme the client used, as the ALB does; a client's own value
    # would make the app build https:// links for a plain-HTTP request.
    http-request set-header X-Forwarded-Proto http
    {indent.join(proxy.frontend_request_rules())}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    {indent.join(proxy.backend_buffering())}
    option httpchk GET {HEALTH_PATH}
    http-check expect status 200
    default-server {default_server}
{servers}

listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /
    stats refresh 2s
    stats show-legends
    stats hide-version
    stats realm pyscale
    stats auth {STATS_USER}:{stats_password}
"""


@dataclass(frozen=True)
class ServerStats:
    """One replica's row of `show stat`."""

    name: str
    status: str  # UP, DOWN, DRAIN, MAINT, or a transition such as "UP 1/2"
    current_sessions: int
    total_sessions: int
    responses_5xx: int
    # Requests HAProxy had to retry (connection to this replica failed) or send elsewhere.
    retries: int
    redispatches: int
    check_status: str
    last_change_seconds: int

    @property
    def check_passed(self) -> bool:
        """The last health check got the expected answer (HAProxy's L7OK)."""
        return "L7OK" in self.check_status

    @property
    def serving(self) -> bool:
        """True when HAProxy sends new requests to it (UP, including going down)."""
        return self.status.startswith("UP") or self.status == "no check"


class RuntimeApi:
    """HAProxy's runtime API over its UNIX socket.

    Hand-written because the protocol is one text line in, text out until the socket
    closes, and the maintained Python clients for it are heavier than these lines.
    """

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def command(self, line: str) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(5)
                connection.connect(str(self.socket_path))
                connection.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := connection.recv(65536):
                    chunks.append(chunk)
        except (FileNotFoundError, ConnectionRefusedError) as error:
            raise LocalTopologyError(
                f"HAProxy's runtime API at {self.socket_path} does not answer ({error}); "
                f"is `pyscale local up` still running?"
            ) from None
        return b"".join(chunks).decode()

    def server_stats(self) -> dict[str, ServerStats]:
        """The replicas' rows of `show stat`, by server name."""
        text = self.command("show stat")
        rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
        return {
            row["svname"]: ServerStats(
                name=row["svname"],
                status=row["status"],
                current_sessions=int(row["scur"] or 0),
                total_sessions=int(row["stot"] or 0),
                responses_5xx=int(row["hrsp_5xx"] or 0),
                retries=int(row["wretr"] or 0),
                redispatches=int(row["wredis"] or 0),
                check_status=row["check_status"],
                last_change_seconds=int(row["lastchg"] or 0),
            )
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def backend_retries(self) -> int:
        """Retries plus redispatches over the whole backend, servers since removed included."""
        text = self.command("show stat")
        for row in csv.DictReader(io.StringIO(text.removeprefix("# "))):
            if row["pxname"] == BACKEND and row["svname"] == "BACKEND":
                return int(row["wretr"] or 0) + int(row["wredis"] or 0)
        raise LocalTopologyError(f"HAProxy's stats have no row for backend {BACKEND}")

    def add_server(self, server: str, port: int, options: str) -> None:
        """Add a replica at runtime, health checks on, and let it take requests once its
        checks pass. (Servers added at runtime start in maintenance, checks off.)"""
        self._expect(
            f"add server {BACKEND}/{server} 127.0.0.1:{port} check {options}",
            "New server registered.",
            f"add {server}",
        )
        self._expect(f"enable health {BACKEND}/{server}", "", f"check {server}")
        self.set_state(server, "ready")

    def delete_server(self, server: str) -> bool:
        """Remove a replica in maintenance; False while HAProxy still holds connections
        to it (it refuses then; ask again once they are closed)."""
        answer = self.command(f"del server {BACKEND}/{server}").strip()
        if answer == "Server deleted.":
            return True
        if "still has connections" in answer or "connections attached" in answer:
            return False
        raise LocalTopologyError(f"HAProxy refused to remove {server}: {answer}")

    def _expect(self, line: str, expected: str, what: str) -> None:
        answer = self.command(line).strip()
        if answer != expected:
            raise LocalTopologyError(f"HAProxy refused to {what}: {answer}")

    def set_state(self, server: str, state: str) -> None:
        """`ready`, `drain` or `maint` for one replica; raise if HAProxy refuses."""
        answer = self.command(f"set server {BACKEND}/{server} state {state}").strip()
        if answer:
            raise LocalTopologyError(f"HAProxy refused to set {server} to {state}: {answer}")
