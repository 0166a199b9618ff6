"""Find the OS programs the topology runs for real, or say exactly how to install them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from pyscale.local.errors import LocalTopologyError

# command -> Debian package (the same pairs as SYSTEM_PACKAGES in the Makefile).
DEBIAN_PACKAGES = {"redis-server": "redis-server", "haproxy": "haproxy"}
OTHER_SYSTEMS_HINT = "macOS: brew install redis haproxy; Fedora: dnf install redis haproxy"


@dataclass(frozen=True)
class Programs:
    """Absolute paths of the OS programs the topology starts."""

    redis_server: str
    haproxy: str


def find_programs() -> Programs:
    """Locate redis-server and haproxy on PATH; raise one error naming every missing one."""
    found = {command: shutil.which(command) for command in DEBIAN_PACKAGES}
    paths = {command: path for command, path in found.items() if path is not None}
    missing = [command for command in DEBIAN_PACKAGES if command not in paths]
    if missing:
        packages = " ".join(DEBIAN_PACKAGES[command] for command in missing)
        raise LocalTopologyError(
            f"missing program(s): {', '.join(missing)}. Install them, for example on "
            f"Debian/Ubuntu: `sudo apt-get install {packages}` (or `make install`, which "
            f"does it for you); {OTHER_SYSTEMS_HINT}."
        )
    return Programs(redis_server=paths["redis-server"], haproxy=paths["haproxy"])
