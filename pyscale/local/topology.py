"""Start, roll, inspect and stop the one-machine topology.

`LocalTopology` is what `pyscale local up|roll|status`, the integration tests and the
benchmark share. Processes: one redis-server, N gunicorn replicas of `app.wsgi:app`
started with the very app/gunicorn.conf.py the EC2 instances use, and HAProxy in front.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis

from app.contract import GRACEFUL_TIMEOUT_SECONDS, HEALTH_PATH, Env
from app.settings import SettingsError
from app.settings import load_settings as load_app_settings
from app.sizing import admitted_requests
from pyscale.local import haproxy, processes, state
from pyscale.local.errors import LocalTopologyError
from pyscale.local.ports import LOOPBACK, free_port, require_free_port
from pyscale.local.processes import ProcessRecord
from pyscale.local.programs import Programs, find_programs
from pyscale.local.state import ReplicaState, TopologyState

STARTUP_TIMEOUT_SECONDS = 60
# Variables that would point a replica at AWS resources; the local replicas use the
# local redis-server only.
AWS_ONLY_VARIABLES = (Env.REDIS_CLUSTER, Env.REDIS_AUTH_SECRET_ARN)

DEFAULT_WSGI_APP = "app.wsgi:app"
WSGI_APP_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(\(\))?$")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class TopologySpec:
    """What to start. `extra_env` reaches every replica (e.g. CACHE_TTL_SECONDS);
    `wsgi_app` is what gunicorn serves (your own app must honour app/contract.py)."""

    replicas: int
    workers: int
    port: int
    workdir: Path
    stack: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    wsgi_app: str = DEFAULT_WSGI_APP

    def validate(self) -> None:
        if self.replicas < 1:
            raise LocalTopologyError(
                f"--replicas {self.replicas}: at least 1 replica is needed to serve anything."
            )
        if self.workers < 1:
            raise LocalTopologyError(
                f"--workers {self.workers}: each replica needs at least 1 gunicorn worker."
            )
        if not WSGI_APP_PATTERN.match(self.wsgi_app):
            raise LocalTopologyError(
                f"--app {self.wsgi_app!r}: expected module:callable, e.g. {DEFAULT_WSGI_APP}."
            )
        require_free_port(self.port, what="load balancer (HAProxy)", option="--port")


@dataclass(frozen=True)
class StopReport:
    """What `stop` had to do: groups that needed SIGKILL, and pids that survived even that."""

    forced: tuple[str, ...]
    leftover_pids: tuple[int, ...]


@dataclass(frozen=True)
class ReplicaStatus:
    """One line of `pyscale local status`."""

    name: str
    port: int
    pid: int | None
    process_running: bool
    balancer_status: str
    check_status: str
    in_flight: int
    requests: int
    responses_5xx: int


def app_directory() -> Path:
    """Where the app package lives (its gunicorn.conf.py is next to its code)."""
    spec = importlib.util.find_spec("app")
    if spec is None or spec.origin is None:
        raise LocalTopologyError("the `app` package is not importable; run `make install`.")
    return Path(spec.origin).parent


def gunicorn_config_path() -> Path:
    path = app_directory() / "gunicorn.conf.py"
    if not path.is_file():
        raise LocalTopologyError(f"{path} is missing: the replicas need the app's gunicorn config.")
    return path


class LocalTopology:
    """A topology in a work directory: start a new one, or attach to a running one."""

    def __init__(self, workdir: Path, programs: Programs | None = None) -> None:
        self.workdir = workdir.resolve()
        self._programs = programs

    @property
    def programs(self) -> Programs:
        if self._programs is None:
            self._programs = find_programs()
        return self._programs

    # --- state ---------------------------------------------------------------------------

    def state(self) -> TopologyState:
        return state.load(self.workdir)

    @property
    def api(self) -> haproxy.RuntimeApi:
        return haproxy.RuntimeApi(Path(self.state().socket_path))

    def _update(self, change: Callable[[TopologyState], TopologyState]) -> TopologyState:
        with state.locked(self.workdir):
            updated = change(state.load(self.workdir))
            state.save(updated)
            return updated

    # --- start ---------------------------------------------------------------------------

    def start(self, spec: TopologySpec, progress: Progress = _quiet) -> TopologyState:
        """Start redis-server, the replicas and HAProxy; on any failure stop what started.

        The caller holds `state.exclusive_owner(workdir)` for as long as it runs.
        """
        spec.validate()
        programs = self.programs
        if (self.workdir / state.STATE_FILE).exists():
            # Left by an `up` that was killed outright (the caller holds the owner lock,
            # so no live `up` owns it): stop what that run recorded before starting anew.
            progress("stopping what a previous run left behind")
            self.stop()
        config_path = gunicorn_config_path()
        state.private_directory(self.workdir)
        for stale in ("metrics", "redis"):
            shutil.rmtree(self.workdir / stale, ignore_errors=True)
        socket_path = _unix_socket_path(self.workdir / "haproxy.sock")
        initial = TopologyState(
            workdir=str(self.workdir),
            owner_pid=os.getpid(),
            stack=spec.stack,
            port=spec.port,
            stats_port=free_port(),
            redis_port=free_port(),
            workers=spec.workers,
            socket_path=str(socket_path),
            haproxy_config=str(self.workdir / "haproxy.cfg"),
            replicas=tuple(
                ReplicaState(name=f"replica-{index}", port=free_port())
                for index in range(1, spec.replicas + 1)
            ),
            extra_env=dict(spec.extra_env),
            wsgi_app=spec.wsgi_app,
            # URL-safe, so they go into REDIS_URL and haproxy.cfg as they are.
            redis_password=secrets.token_urlsafe(24),
            stats_password=secrets.token_urlsafe(12),
        )
        with state.locked(self.workdir):
            state.save(initial)
        try:
            self._start_redis(progress)
            progress(f"starting {spec.replicas} replica(s) x {spec.workers} gunicorn worker(s)")
            for replica in initial.replicas:
                self._spawn_replica(replica.name, config_path)
            for replica in self.state().replicas:
                self._wait_replica_healthy(replica)
                progress(f"{replica.name} healthy on port {replica.port}")
            self._start_haproxy(programs, progress)
        except BaseException:
            self.stop()
            raise
        return self.state()

    def _start_redis(self, progress: Progress) -> None:
        current = self.state()
        progress(f"starting redis-server on port {current.redis_port}")
        data_dir = self.workdir / "redis"
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The password goes in a file only we can read, not on the command line, which
        # every local user can read in /proc while redis-server starts.
        secret_config = self.workdir / "redis-auth.conf"
        state.write_private(secret_config, f"requirepass {current.redis_password}\n")
        argv = [
            self.programs.redis_server,
            str(secret_config),
            "--port", str(current.redis_port),
            "--bind", LOOPBACK,
            "--dir", str(data_dir),
            "--save", "",
            "--appendonly", "no",
            # Like the ElastiCache parameter group: evict least recently used keys.
            "--maxmemory", "128mb",
            "--maxmemory-policy", "allkeys-lru",
        ]  # fmt: skip
        with _signals_deferred():
            record = processes.spawn(
                "redis-server",
                argv,
                env=os.environ,
                log_path=self.workdir / "logs" / "redis.log",
            )
            self._update(lambda s: replace(s, redis=record))
        self._wait_redis(record)

    def start_redis(self) -> None:
        """Start redis-server again on its port (after `stop_redis`), as a cache comes back."""
        self._start_redis(_quiet)

    def stop_redis(self) -> None:
        """Stop redis-server, as losing the cache cluster (the replicas keep serving)."""
        record = self.state().redis
        if record is not None:
            processes.stop(record, grace_seconds=5)
            self._update(lambda s: replace(s, redis=None))

    def _wait_redis(self, record: ProcessRecord) -> None:
        client = redis.Redis.from_url(self.state().redis_url, socket_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            _wait_for(answers, "redis-server to answer PING", record)
        finally:
            client.close()

    def _replica_env(self, name: str, port: int) -> dict[str, str]:
        current = self.state()
        metrics_dir = self.workdir / "metrics" / name
        env = {key: value for key, value in os.environ.items() if key not in AWS_ONLY_VARIABLES}
        env.update(
            {
                Env.PORT: str(port),
                Env.WEB_CONCURRENCY: str(current.workers),
                Env.INSTANCE_NAME: name,
                Env.REDIS_URL: current.redis_url,
                Env.PROMETHEUS_MULTIPROC_DIR: str(metrics_dir),
                # Forwarded headers are trusted only from the load balancer, as on EC2.
                Env.FORWARDED_ALLOW_IPS: LOOPBACK,
                # HAProxy listens on loopback only: these are the names a client can use.
                Env.TRUSTED_HOSTS: f"{LOOPBACK},localhost",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(current.extra_env)
        return env

    def _admitted_requests(self) -> int:
        """Requests HAProxy may send one replica at once (app.sizing.admitted_requests),
        from WEB_THREADS as the app reads it (app/settings.py) in a replica's environment."""
        environ = self._replica_env("replica-probe", 0)
        environ.pop(Env.PORT)
        try:
            threads = load_app_settings(environ).server.web_threads
        except SettingsError as error:
            raise LocalTopologyError(str(error)) from None
        return admitted_requests(self.state().workers, threads)

    def _spawn_replica(
        self, name: str, config_path: Path | None = None
    ) -> tuple[ReplicaState, ProcessRecord]:
        """Start replica `name`'s gunicorn; its state (now with the process) and the process."""
        replica = self.state().replica(name)
        argv = [
            sys.executable, "-m", "gunicorn",
            "--config", str(config_path or gunicorn_config_path()),
            # The config binds every interface (on EC2 the ALB comes over the VPC); here
            # only HAProxy, on loopback, may reach a replica. The command line wins.
            "--bind", f"{LOOPBACK}:{replica.port}",
            self.state().wsgi_app,
        ]  # fmt: skip
        env = self._replica_env(name, replica.port)
        # A fresh metrics directory: a previous process's files would count.
        metrics_dir = Path(env[Env.PROMETHEUS_MULTIPROC_DIR])
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        with _signals_deferred():
            record = processes.spawn(
                name,
                argv,
                env=env,
                log_path=self.workdir / "logs" / f"{name}.log",
                cwd=app_directory().parent,
            )
            updated = replace(replica, process=record)
            self._update(lambda s: s.with_replica(updated))
        return updated, record

    def _wait_replica_healthy(self, replica: ReplicaState) -> None:
        _wait_for(
            lambda: _http_status(replica.port, HEALTH_PATH) == 200,
            f"{replica.name} to answer {HEALTH_PATH} on port {replica.port}",
            replica.process,
        )

    def _start_haproxy(self, programs: Programs, progress: Progress) -> None:
        current = self.state()
        config_path = Path(current.haproxy_config)
        state.write_private(
            config_path,
            haproxy.render_config(
                port=current.port,
                stats_port=current.stats_port,
                socket_path=Path(current.socket_path),
                backends=[haproxy.Backend(r.name, r.port) for r in current.replicas],
                admitted_requests=self._admitted_requests(),
                stats_password=current.stats_password,
            ),
        )
        check = subprocess.run(
            [programs.haproxy, "-c", "-q", "-f", str(config_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise LocalTopologyError(f"HAProxy rejects {config_path}:\n{check.stderr.strip()}")
        # The port may have been taken since validation; fail clearly rather than in a log.
        require_free_port(current.port, what="load balancer (HAProxy)", option="--port")
        progress(f"starting HAProxy on port {current.port}")
        with _signals_deferred():
            record = processes.spawn(
                "haproxy",
                [programs.haproxy, "-db", "-f", str(config_path)],
                env=os.environ,
                log_path=self.workdir / "logs" / "haproxy.log",
            )
            self._update(lambda s: replace(s, haproxy=record))
        api = haproxy.RuntimeApi(Path(current.socket_path))

        def all_serving() -> bool:
            with contextlib.suppress(LocalTopologyError, OSError):
                servers = api.server_stats()
                return len(servers) == len(current.replicas) and all(
                    server.status == "UP" for server in servers.values()
                )
            return False

        _wait_for(all_serving, "HAProxy to see every replica UP", record)
        progress("every replica is UP behind HAProxy")

    # --- stop ----------------------------------------------------------------------------

    def stop(self) -> StopReport:
        """Stop every recorded process (HAProxy, replicas, Redis), then check none is left."""
        try:
            current = self.state()
        except LocalTopologyError:
            return StopReport(forced=(), leftover_pids=())
        records = current.processes()
        forced = []
        for record in records:
            if record.name == "haproxy":
                # SIGUSR1 is HAProxy's soft stop: stop listening, finish what is in flight.
                stopped = processes.stop(
                    record, grace_seconds=GRACEFUL_TIMEOUT_SECONDS, signum=signal.SIGUSR1
                )
            else:
                stopped = processes.stop(record, grace_seconds=GRACEFUL_TIMEOUT_SECONDS + 5)
            if not stopped:
                forced.append(record.name)
        leftovers = self.leftover_processes(records)
        if not leftovers:
            state.remove(self.workdir)
            socket_dir = Path(current.socket_path).parent
            if socket_dir != self.workdir:  # the short private directory made for it
                shutil.rmtree(socket_dir, ignore_errors=True)
        return StopReport(forced=tuple(forced), leftover_pids=tuple(leftovers))

    def leftover_processes(self, records: list[ProcessRecord]) -> list[int]:
        """Pids still alive in the process groups of `records` (empty after a clean stop)."""
        return sorted({pid for record in records for pid in processes.group_members(record.pgid)})

    # --- status --------------------------------------------------------------------------

    def status(self) -> list[ReplicaStatus]:
        current = self.state()
        try:
            servers = self.api.server_stats()
        except LocalTopologyError:
            servers = {}
        rows = []
        for replica in current.replicas:
            server = servers.get(replica.name)
            rows.append(
                ReplicaStatus(
                    name=replica.name,
                    port=replica.port,
                    pid=replica.process.pid if replica.process else None,
                    process_running=bool(replica.process and processes.is_running(replica.process)),
                    balancer_status=server.status if server else "unknown (HAProxy down)",
                    check_status=server.check_status if server else "",
                    in_flight=server.current_sessions if server else 0,
                    requests=server.total_sessions if server else 0,
                    responses_5xx=server.responses_5xx if server else 0,
                )
            )
        return rows

    def redis_running(self) -> bool:
        record = self.state().redis
        return record is not None and processes.is_running(record)

    def haproxy_running(self) -> bool:
        record = self.state().haproxy
        return record is not None and processes.is_running(record)

    # --- replicas: roll, replace, kill ---------------------------------------------------

    def roll(self, progress: Progress = _quiet) -> None:
        """Replace every replica, one at a time, launching each replacement before the old
        one leaves, so serving capacity never drops below what it was — as the ASG's
        instance refresh does with a maximum healthy percentage above 100 (infra/fleet.py).
        Works with a single replica too: there is never a moment without one UP."""
        names = [replica.name for replica in self.state().replicas]
        for position, name in enumerate(names, start=1):
            with state.replicas_lock(self.workdir):
                replacement = self._launch_replacement(name, position, len(names), progress)
                self._retire(name, progress)
            progress(f"[{position}/{len(names)}] {name} replaced by {replacement}")
        progress(f"rolled {len(names)} replica(s)")

    def _launch_replacement(self, old: str, position: int, count: int, progress: Progress) -> str:
        """Start a new replica (new name, new port), add it to HAProxy, and return its name
        once HAProxy's own checks see it UP. On failure, remove it again: the old replica
        never stopped serving, as an instance refresh rolls back."""
        name = _next_replica_name(self.state().replicas)
        replica = ReplicaState(name=name, port=free_port())
        self._update(lambda s: replace(s, replicas=(*s.replicas, replica)))
        progress(f"[{position}/{count}] {old}: launching {name} on port {replica.port} first")
        api = self.api
        try:
            launched, process = self._spawn_replica(name)
            self._wait_replica_healthy(launched)
            api.add_server(
                name,
                replica.port,
                haproxy.server_options(self._admitted_requests()),
            )

            def checked_up() -> bool:
                server = api.server_stats().get(name)
                # Passed a check of its own, not merely assumed UP on being enabled.
                return server is not None and server.status == "UP" and server.check_passed

            _wait_for(checked_up, f"HAProxy's checks to see {name} UP", process)
        except BaseException:
            progress(f"{name}: never became healthy; removing it ({old} keeps serving)")
            with contextlib.suppress(LocalTopologyError, OSError):
                self._remove_replica(name, in_haproxy=name in api.server_stats())
            raise
        progress(f"{name}: UP in HAProxy (pid {process.pid})")
        return name

    def _retire(self, name: str, progress: Progress) -> None:
        """Drain `name`, stop it once idle (or after the graceful timeout), remove it."""
        progress(f"{name}: draining")
        self._drain(name, progress)
        self._remove_replica(name, in_haproxy=True, progress=progress)

    def _drain(self, name: str, progress: Progress) -> None:
        """No new requests to `name`; in-flight ones get up to the app's graceful timeout,
        the figure the ALB's deregistration delay uses."""
        api = self.api
        api.set_state(name, "drain")
        try:
            _wait_for(
                lambda: api.server_stats()[name].current_sessions == 0,
                f"{name}'s in-flight requests to finish",
                None,
                timeout_seconds=GRACEFUL_TIMEOUT_SECONDS,
            )
        except LocalTopologyError:
            # As the ALB after its deregistration delay: stop waiting and move on.
            progress(f"{name}: still busy after {GRACEFUL_TIMEOUT_SECONDS} s; stopping it")

    def _remove_replica(self, name: str, *, in_haproxy: bool, progress: Progress = _quiet) -> None:
        """Take `name` out of HAProxy (maintenance, then delete), stop it, forget it."""
        api = self.api
        if in_haproxy:
            # Maintenance stops the health checks too, so the stop below is not a failure.
            api.set_state(name, "maint")
        record = self.state().replica(name).process
        if record is not None:
            progress(f"{name}: stopping (pid {record.pid})")
            processes.stop(record, grace_seconds=GRACEFUL_TIMEOUT_SECONDS + 5)
        if in_haproxy:
            # HAProxy refuses while it still holds (idle) connections to the server; they
            # close once the process is gone.
            _wait_for(
                lambda: api.delete_server(name),
                f"HAProxy to let go of {name}",
                None,
                timeout_seconds=GRACEFUL_TIMEOUT_SECONDS,
            )
        self._update(lambda s: replace(s, replicas=tuple(r for r in s.replicas if r.name != name)))

    def replace_replica(self, name: str, progress: Progress = _quiet) -> None:
        """Restart `name` in place (same name and port): drain, stop, start, re-enable."""
        with state.replicas_lock(self.workdir):
            self._replace_replica(name, progress)

    def replace_dead_replicas(self, progress: Progress = _quiet) -> list[str]:
        """Replace replicas whose processes died and that HAProxy took out, as the ASG
        replaces instances that fail their health checks. Skipped while a roll runs."""
        with state.replicas_lock(self.workdir, wait=False) as acquired:
            if not acquired:
                return []
            dead = [
                row.name
                for row in self.status()
                if not row.process_running and row.balancer_status.startswith("DOWN")
            ]
            for name in dead:
                progress(f"{name} died: replacing it, as the ASG replaces an unhealthy instance")
                self._replace_replica(name, progress)
            return dead

    def _replace_replica(self, name: str, progress: Progress) -> None:
        """In place, for a replica that died: there is nothing left serving to keep up
        while it restarts, so its slot (name, port, HAProxy server) is simply reused."""
        api = self.api
        replica = self.state().replica(name)
        self._drain(name, progress)
        # Maintenance stops the health checks too, so the stop below is not a failure.
        api.set_state(name, "maint")
        if replica.process is not None:
            progress(f"{name}: stopping (pid {replica.process.pid})")
            processes.stop(replica.process, grace_seconds=GRACEFUL_TIMEOUT_SECONDS + 5)
        progress(f"{name}: starting")
        replacement, process = self._spawn_replica(name)
        self._wait_replica_healthy(replacement)
        api.set_state(name, "ready")
        _wait_for(
            lambda: api.server_stats()[name].status == "UP",
            f"HAProxy to see {name} UP again",
            process,
        )
        progress(f"{name}: UP again (pid {process.pid})")

    def kill_replica(self, name: str) -> None:
        """SIGKILL a replica's whole process group, as an instance dying under load."""
        record = self.state().replica(name).process
        if record is not None:
            processes.kill(record)
            processes.wait_stopped(record, timeout_seconds=10)


# --- helpers ------------------------------------------------------------------------------

REPLICA_NAME = re.compile(r"^replica-(\d+)$")


def _next_replica_name(replicas: tuple[ReplicaState, ...]) -> str:
    """A name no replica of this topology had: one past the highest. A replacement always
    joins before the replica it replaces leaves, so the highest is never given back."""
    numbers = [int(m.group(1)) for r in replicas if (m := REPLICA_NAME.match(r.name))]
    return f"replica-{max(numbers, default=0) + 1}"


def _wait_for(
    condition: Callable[[], bool],
    what: str,
    process: ProcessRecord | None,
    *,
    timeout_seconds: float = STARTUP_TIMEOUT_SECONDS,
) -> None:
    """Poll `condition` until true; fail early if `process` exits, or at the deadline."""
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if process is not None and not processes.is_running(process):
            raise LocalTopologyError(
                f"{process.name} exited while waiting for {what}; its log "
                f"({process.log_path}) ends with:\n{_tail(Path(process.log_path))}"
            )
        if time.monotonic() >= deadline:
            raise LocalTopologyError(f"timed out after {timeout_seconds:.0f} s waiting for {what}.")
        time.sleep(0.1)


def _unix_socket_path(preferred: Path) -> Path:
    """`preferred`, unless it is too long for a UNIX socket (108 bytes on Linux): then a
    fresh private directory under the system's temporary directory."""
    if len(str(preferred)) < 100:
        return preferred
    return Path(tempfile.mkdtemp(prefix="pyscale-")) / "haproxy.sock"


def _http_status(port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a process is started and recorded, so a stop request
    can never land between the two and leave an unrecorded process behind.

    Handlers that remember the signal and re-raise it afterwards, rather than a blocked
    signal mask: children inherit the mask, and a gunicorn with SIGTERM blocked would
    ignore every stop request.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    received: list[signal.Signals] = []
    deferred = (signal.SIGINT, signal.SIGTERM)

    def remember(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum))

    previous = {signum: signal.signal(signum, remember) for signum in deferred}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in received:
            signal.raise_signal(signum)
