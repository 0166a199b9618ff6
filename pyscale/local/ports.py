"""Loopback ports: pick free ones for internal processes, refuse a busy public one."""

from __future__ import annotations

import errno
import random
import socket
from pathlib import Path

from pyscale.local.errors import LocalTopologyError

LOOPBACK = "127.0.0.1"


# The kernel's ephemeral range when /proc can't say (Linux's default).
_DEFAULT_EPHEMERAL = (32768, 60999)
_LOWEST_PORT = 10000
_handed_out: set[int] = set()


def ephemeral_port_range() -> tuple[int, int]:
    """The range the kernel takes outgoing connections' source ports from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL


def free_port(*, span: int = 0) -> int:
    """A loopback port nothing listens on now, for a server the caller starts soon; with
    ``span``, ``port + span`` is free too (a Redis cluster node's bus port).

    Not ``bind(("127.0.0.1", 0))``: the kernel picks that from its ephemeral range, the
    same range every outgoing connection's source port comes from, so under load a client
    socket could take the port before the server bound it (HAProxy's stats port lost that
    race in a test run). Ports below the ephemeral range are never handed to clients, and
    a port is handed out once per process."""
    ceiling = ephemeral_port_range()[0] - 1 - span
    if ceiling <= _LOWEST_PORT:
        raise LocalTopologyError(
            "no loopback ports below the kernel's ephemeral range "
            "(net.ipv4.ip_local_port_range) are left for local servers"
        )
    for _ in range(500):
        port = random.randint(_LOWEST_PORT, ceiling)  # noqa: S311 - spreads picks; no secret
        candidates = (port, port + span) if span else (port,)
        if any(p in _handed_out for p in candidates):
            continue
        if all(port_is_free(p) for p in candidates):
            _handed_out.update(candidates)
            return port
    raise LocalTopologyError(
        f"no free loopback port between {_LOWEST_PORT} and {ceiling} after 500 tries"
    )


def port_is_free(port: int) -> bool:
    """True when a server could listen on the port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as servers set it: a port whose old connections linger in TIME_WAIT
        # is still one a server can listen on.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def require_free_port(port: int, *, what: str, option: str) -> None:
    """Raise a clear error if `port` is out of range or something already listens on it."""
    if not 1 <= port <= 65535:
        raise LocalTopologyError(f"{option} {port}: a port must be between 1 and 65535.")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Without SO_REUSEADDR, as HAProxy binds: a port in TIME_WAIT is still usable by
        # it (it sets SO_REUSEADDR itself), so mirror that to avoid false alarms.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise LocalTopologyError(
                    f"{option} {port}: the port is already in use, so the {what} cannot "
                    f"listen on it. Stop what uses it (`ss -ltnp 'sport = :{port}'` shows "
                    f"it) or pass another {option}."
                ) from None
            if error.errno == errno.EACCES:
                raise LocalTopologyError(
                    f"{option} {port}: permission denied (ports below 1024 need root); "
                    f"pass a port of 1024 or more."
                ) from None
            raise
