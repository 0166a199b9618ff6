"""The rendered HAProxy configuration: accepted by haproxy itself, shaped like the ALB's."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.contract import GRACEFUL_TIMEOUT_SECONDS, HEALTH_PATH
from pyscale.local.haproxy import Backend, render_config


@pytest.fixture
def config(tmp_path: Path) -> str:
    return render_config(
        port=18080,
        stats_port=18081,
        socket_path=tmp_path / "haproxy.sock",
        backends=[Backend("replica-1", 18001), Backend("replica-2", 18002)],
        admitted_requests=7,
        stats_password="s3cret",
    )


def test_haproxy_accepts_the_rendered_configuration(tmp_path: Path, config: str) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    check = subprocess.run(
        [shutil.which("haproxy") or "haproxy", "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_it_follows_the_target_group_rules_from_the_shared_contract(config: str) -> None:
    lines = [line.strip() for line in config.splitlines()]
    assert "balance roundrobin" in lines
    assert f"option httpchk GET {HEALTH_PATH}" in lines
    assert f"hard-stop-after {GRACEFUL_TIMEOUT_SECONDS}s" in lines
    assert "option redispatch 1" in lines
    assert any(line.startswith("retry-on conn-failure") for line in lines)
    assert "server replica-1 127.0.0.1:18001 check" in lines
    assert "server replica-2 127.0.0.1:18002 check" in lines
