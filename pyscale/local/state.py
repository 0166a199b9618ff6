"""The state of a running topology, kept in its work directory.

`pyscale local up` writes it; `roll` and `status` (other processes) read it to find the
processes, ports and HAProxy's runtime socket; `roll` updates it when it replaces a
replica, so `up` stops the replacement too. Writes are atomic (write, then rename) and
serialised by a lock file, because two commands may update it at once.

The machine may be shared: the work directory is private to its owner (0700) and the state
file, which holds the run's Redis and stats passwords, is 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pyscale.local.errors import LocalTopologyError
from pyscale.local.processes import ProcessRecord

STATE_FILE = "state.json"
STATE_LOCK = "state.lock"
UP_LOCK = "up.lock"
REPLICAS_LOCK = "replicas.lock"
DEFAULT_WORKDIR = Path(".pyscale/local")


@dataclass(frozen=True)
class ReplicaState:
    """One app replica: its HAProxy server name (also its INSTANCE_NAME), port, process."""

    name: str
    port: int
    process: ProcessRecord | None = None


@dataclass(frozen=True)
class TopologyState:
    """Everything another command needs to find and act on a running topology."""

    workdir: str
    owner_pid: int
    stack: str | None
    port: int
    stats_port: int
    redis_port: int
    workers: int
    socket_path: str
    haproxy_config: str
    replicas: tuple[ReplicaState, ...]
    redis: ProcessRecord | None = None
    haproxy: ProcessRecord | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    wsgi_app: str = "app.wsgi:app"
    # New for every `up`: any local user can reach a loopback port.
    redis_password: str = ""
    stats_password: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def redis_url(self) -> str:
        """What the replicas get as REDIS_URL (the password is URL-safe by construction)."""
        return f"redis://:{self.redis_password}@127.0.0.1:{self.redis_port}/0"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}/"

    def replica(self, name: str) -> ReplicaState:
        for replica in self.replicas:
            if replica.name == name:
                return replica
        known = ", ".join(replica.name for replica in self.replicas)
        raise LocalTopologyError(f"no replica named {name!r}; the replicas are: {known}.")

    def with_replica(self, updated: ReplicaState) -> TopologyState:
        return replace(
            self,
            replicas=tuple(updated if r.name == updated.name else r for r in self.replicas),
        )

    def processes(self) -> list[ProcessRecord]:
        """Every recorded process, in the order to stop them: front door first."""
        ordered = [self.haproxy, *(replica.process for replica in self.replicas), self.redis]
        return [record for record in ordered if record is not None]


def private_directory(path: Path) -> Path:
    """`path` as a directory only its owner may enter (0700), created if missing; refused
    when another user owns it (its files could be read or replaced by them)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid != os.getuid():
        raise LocalTopologyError(f"{path} belongs to another user; pass a --workdir of your own.")
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write `text` to a new file only its owner may read (0600), whatever the umask."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def save(state: TopologyState) -> None:
    workdir = Path(state.workdir)
    temporary = workdir / f".{STATE_FILE}.{os.getpid()}"
    write_private(temporary, json.dumps(asdict(state), indent=2) + "\n")
    temporary.replace(workdir / STATE_FILE)


def load(workdir: Path) -> TopologyState:
    """The recorded state, or a clear error when no topology was started there."""
    path = workdir / STATE_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise LocalTopologyError(
            f"no local topology runs from {workdir} (no {STATE_FILE}); start one with "
            f"`pyscale local up` (or pass the --workdir it was started with)."
        ) from None
    except json.JSONDecodeError as error:
        raise LocalTopologyError(f"{path} is not valid JSON ({error}); remove it.") from None

    def record(value: dict[str, Any] | None) -> ProcessRecord | None:
        return ProcessRecord(**value) if value else None

    return TopologyState(
        **{
            **raw,
            "replicas": tuple(
                ReplicaState(name=r["name"], port=r["port"], process=record(r["process"]))
                for r in raw["replicas"]
            ),
            "redis": record(raw["redis"]),
            "haproxy": record(raw["haproxy"]),
        }
    )


def remove(workdir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (workdir / STATE_FILE).unlink()


@contextlib.contextmanager
def locked(workdir: Path) -> Iterator[None]:
    """Hold the state lock: read-modify-write of the state happens inside."""
    private_directory(workdir)
    with (workdir / STATE_LOCK).open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive_owner(workdir: Path) -> Iterator[None]:
    """Held by `up` for its whole life: one topology per work directory."""
    private_directory(workdir)
    with (workdir / UP_LOCK).open("a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalTopologyError(
                f"a topology already runs from {workdir} (`pyscale local status` shows "
                f"it); stop it first, or pass another --workdir."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@contextlib.contextmanager
def replicas_lock(workdir: Path, *, wait: bool = True) -> Iterator[bool]:
    """Held while a replica is being replaced, so `roll` and the self-healing in `up`
    never replace the same replica at once. Yields False (without the lock) when
    `wait` is False and someone else holds it."""
    private_directory(workdir)
    with (workdir / REPLICAS_LOCK).open("a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def is_owned(workdir: Path) -> bool:
    """True while some `up` holds the work directory."""
    path = workdir / UP_LOCK
    if not path.exists():
        return False
    with path.open("a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        return False
