"""Real redis-server processes for tests: standalone, TLS + AUTH, replica, 3-master cluster
(and SilentServer, a listener that never answers, for a blackholed Redis).

Every server listens on a free loopback port, keeps its files under the test's tmp
directory, and is stopped (SIGTERM, then SIGKILL after a bounded wait) by its fixture.
Readiness is polled with a deadline, never slept for.

    from tests.support.servers import start_redis, start_tls_redis, start_redis_cluster
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from pyscale.local.ports import free_port, port_is_free

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
LOOPBACK = "127.0.0.1"
START_DEADLINE_SECONDS = 10.0


def wait_until(condition: Callable[[], object], deadline_seconds: float, what: str):
    """Poll `condition` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + deadline_seconds
    delay = 0.005
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {deadline_seconds}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    return free_port(span=10_000)


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (made by trustme)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def generate(cls, directory: Path) -> TlsFiles:
        import trustme

        ca = trustme.CA()
        server_cert = ca.issue_cert(LOOPBACK, "localhost")
        directory.mkdir(parents=True, exist_ok=True)
        files = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        ca.cert_pem.write_to_path(str(files.ca_file))
        server_cert.cert_chain_pems[0].write_to_path(str(files.cert_file))
        server_cert.private_key_pem.write_to_path(str(files.key_file))
        return files


@dataclass
class RedisServer:
    """One redis-server process. stop() and start() keep the port, so tests can cut Redis
    off and bring it back at the same address."""

    directory: Path
    port: int
    password: str | None = None
    tls: TlsFiles | None = None
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = f":{self.password}@" if self.password else ""
        return f"{scheme}://{auth}{LOOPBACK}:{self.port}"

    def client(self, **options) -> redis.Redis:
        if self.tls:
            options.setdefault("ssl_ca_certs", str(self.tls.ca_file))
        return redis.Redis.from_url(self.url, **options)

    def command_line(self) -> list[str]:
        args = [
            REDIS_SERVER,
            "--bind", LOOPBACK,
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        if self.tls:
            args += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.cert_file),
                "--tls-key-file", str(self.tls.key_file),
                "--tls-ca-cert-file", str(self.tls.ca_file),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        return args + list(self.extra_args)

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command_line(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        probe = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)

        def answers() -> bool:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited early on port {self.port}:\n{log}")
            try:
                return bool(probe.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, START_DEADLINE_SECONDS, f"redis-server on port {self.port}")
        finally:
            probe.close()
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None
        wait_until(lambda: port_is_free(self.port), 5, f"port {self.port} to be released")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def start_redis(
    directory: Path,
    *,
    password: str | None = None,
    tls: TlsFiles | None = None,
    extra_args: tuple[str, ...] = (),
) -> RedisServer:
    """A started redis-server on a free loopback port (retried if the port got taken)."""
    last_error: Exception | None = None
    for attempt in range(3):
        server = RedisServer(
            directory / f"attempt-{attempt}", free_port(), password, tls, extra_args
        )
        try:
            return server.start()
        except (RuntimeError, TimeoutError) as error:
            last_error = error
            server.stop()
    raise RuntimeError(f"could not start redis-server: {last_error}")


def start_tls_redis(
    directory: Path,
    password: str = "test-auth-token",  # noqa: S107 (a throwaway test server)
) -> RedisServer:
    """redis-server speaking only TLS (certificates made here) and requiring AUTH."""
    return start_redis(directory, password=password, tls=TlsFiles.generate(directory / "tls"))


@dataclass
class RedisClusterServers:
    """A 3-master cluster made with `redis-cli --cluster create`. url points at one node,
    as an ElastiCache configuration endpoint would."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_redis_cluster(directory: Path, masters: int = 3) -> RedisClusterServers:
    nodes: list[RedisServer] = []
    try:
        for index in range(masters):
            node = RedisServer(
                directory / f"node-{index}",
                free_cluster_port(),
                extra_args=(
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "5000",
                ),
            )  # fmt: skip
            nodes.append(node.start())
        subprocess.run(
            [REDIS_CLI, "--cluster", "create"]
            + [f"{LOOPBACK}:{node.port}" for node in nodes]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )

        def cluster_ok() -> bool:
            for node in nodes:
                with contextlib.closing(node.client()) as client:
                    if client.cluster("info").get("cluster_state") != "ok":
                        return False
            return True

        wait_until(cluster_ok, START_DEADLINE_SECONDS, "the cluster to report cluster_state:ok")
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return RedisClusterServers(nodes)


class SilentServer:
    """A TCP listener on a free loopback port that accepts connections and never answers:
    what a blackholed or hung Redis looks like to a client (the connect succeeds, every
    reply times out). `connections` counts the clients that got through."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}"

    @property
    def connections(self) -> int:
        return len(self._accepted)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by stop()
                return
            self._accepted.append(connection)

    def stop(self) -> None:
        # shutdown() wakes the accept() blocked in the thread; close() alone may not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        for connection in self._accepted:
            connection.close()
