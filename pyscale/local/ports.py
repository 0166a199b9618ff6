"""Loopback ports: pick free ones for internal processes, refuse a busy public one."""

from __future__ import annotations

import errno
import socket

from pyscale.local.errors import LocalTopologyError

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the kernel picks it; the caller binds it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


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
