"""Which machine or replica answered: the EC2 instance id, else a replica name, else the host.

Resolved once per process without ever blocking a request: the boot script exports
INSTANCE_ID; failing that, Nitro instances publish their id as the DMI board asset tag (a
local file read). Only when the DMI vendor says this is EC2 and neither is available is
IMDSv2 asked, in a background thread with a short timeout, so a machine that isn't on EC2
never sends a packet to the metadata address.
"""

from __future__ import annotations

import re
import socket
import threading
import urllib.request
from pathlib import Path

from app.settings import Settings

_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_DMI = Path("/sys/devices/virtual/dmi/id")
_IMDS = "http://169.254.169.254/latest"
_IMDS_TIMEOUT_SECONDS = 0.5


class InstanceIdentity:
    def __init__(self, settings: Settings, dmi_dir: Path = _DMI) -> None:
        self._name = settings.instance_id or _read_asset_tag(dmi_dir)
        self._fallback = settings.instance_name or socket.gethostname()
        if self._name is None and _read(dmi_dir / "sys_vendor") == "Amazon EC2":
            threading.Thread(target=self._ask_imds, name="imds-instance-id", daemon=True).start()

    @property
    def name(self) -> str:
        return self._name or self._fallback

    def _ask_imds(self) -> None:
        try:
            token_request = urllib.request.Request(  # noqa: S310 (fixed http URL to IMDS)
                f"{_IMDS}/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
            )
            with urllib.request.urlopen(token_request, timeout=_IMDS_TIMEOUT_SECONDS) as r:  # noqa: S310
                token = r.read().decode()
            id_request = urllib.request.Request(  # noqa: S310
                f"{_IMDS}/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
            )
            with urllib.request.urlopen(id_request, timeout=_IMDS_TIMEOUT_SECONDS) as r:  # noqa: S310
                candidate = r.read().decode().strip()
        except OSError:
            return
        if _INSTANCE_ID.match(candidate):
            self._name = candidate


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_asset_tag(dmi_dir: Path) -> str | None:
    tag = _read(dmi_dir / "board_asset_tag")
    return tag if tag and _INSTANCE_ID.match(tag) else None
