"""Start OS processes in their own process group and stop them with nothing left behind.

Each process is started as the leader of a new session, so it and everything it forks
(gunicorn's workers) share one process group: stopping the group stops them all, even
if the leader died first. Records carry the kernel's start time of the process so a
recycled pid is never mistaken for ours. psutil would do the /proc reading below, but
the project does not otherwise need it, and three small readers of /proc are enough.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
POLL_SECONDS = 0.05

# Popen objects of the processes this Python process started, so they are reaped (no
# zombies) and Popen does not warn about being dropped while the process runs.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcessRecord:
    """A process we started: enough to find, check and stop it from another command."""

    name: str
    pid: int
    start_ticks: int | None
    log_path: str

    @property
    def pgid(self) -> int:
        # The process leads its own session and group (start_new_session=True).
        return self.pid


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path | None = None,
) -> ProcessRecord:
    """Start `argv` in a new session with stdout and stderr appended to `log_path`, a file
    only its owner may read (0600: logs carry request paths and client addresses)."""
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(descriptor, 0o600)  # a log left by an older run may be world-readable
    with os.fdopen(descriptor, "ab") as log:
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[process.pid] = process
    return ProcessRecord(
        name=name, pid=process.pid, start_ticks=_start_ticks(process.pid), log_path=str(log_path)
    )


def is_running(record: ProcessRecord) -> bool:
    """True while the recorded process itself (not a recycled pid) is alive."""
    child = _children.get(record.pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[record.pid]
        return False
    _reap_if_child(record.pid)
    state = _proc_state(record.pid)
    if state is None:
        return _signal_reaches(record.pid)
    return state not in ("gone", "Z") and _start_ticks(record.pid) == record.start_ticks


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    if not PROC.is_dir():
        return [pgid] if _signal_reaches_group(pgid) else []
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # fields[0] is the state, fields[2] the process group (stat fields 3 and 5).
        if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def signal_group(record: ProcessRecord, signum: int) -> None:
    """Send `signum` to the record's process group if any of it still runs."""
    if not is_running(record) and not group_members(record.pgid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pgid, signum)


def stop(record: ProcessRecord, *, grace_seconds: float, signum: int = signal.SIGTERM) -> bool:
    """Ask the group to stop with `signum`, SIGKILL what remains after `grace_seconds`.

    Returns True when the group stopped within the grace period (no SIGKILL needed).
    """
    signal_group(record, signum)
    if wait_stopped(record, timeout_seconds=grace_seconds):
        return True
    signal_group(record, signal.SIGKILL)
    wait_stopped(record, timeout_seconds=10)
    return False


def kill(record: ProcessRecord) -> None:
    """SIGKILL the whole group at once, as when the machine under it dies."""
    signal_group(record, signal.SIGKILL)


def wait_stopped(record: ProcessRecord, *, timeout_seconds: float) -> bool:
    """Poll until neither the process nor anything in its group runs; False on timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        if not is_running(record) and not group_members(record.pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) the live processes of group `pgid` have used so far."""
    ticks = 0
    for pid in group_members(pgid):
        fields = _stat_fields(pid)
        if fields is not None:
            # utime and stime are stat fields 14 and 15; fields[] starts at field 3.
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


# --- /proc readers ---------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state on (the command name may hold spaces)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
        return None
    return text.rsplit(")", 1)[1].split()


def _proc_state(pid: int) -> str | None:
    if not PROC.is_dir():
        return None
    fields = _stat_fields(pid)
    return "gone" if fields is None else fields[0]


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid) if PROC.is_dir() else None
    # starttime is stat field 22; fields[] starts at field 3.
    return int(fields[19]) if fields is not None else None


def _reap_if_child(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal_reaches(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_reaches_group(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
