"""The one-machine topology on a machine other users share: every loopback port is theirs to
reach, and every world-readable file theirs to read. Real redis-server, gunicorn, HAProxy."""

from __future__ import annotations

import base64
import http.client
import stat
import subprocess
from pathlib import Path

import pytest
import redis

from pyscale.local.haproxy import STATS_USER
from pyscale.local.programs import find_programs
from tests.local.conftest import StartTopology

pytestmark = pytest.mark.slow


def mode(path: Path | str) -> int:
    return stat.S_IMODE(Path(path).stat().st_mode)


def stats_page(port: int, credentials: tuple[str, str] | None) -> tuple[int, bytes]:
    headers = {}
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_redis_takes_only_this_runs_password_which_no_command_line_shows(
    start_topology: StartTopology,
) -> None:
    first, second = start_topology(replicas=1), start_topology(replicas=1)
    state = first.state()

    # A local user who finds the port gets nothing without the password...
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=state.redis_port).set("pyscale:dev:report:v1:1", "x")
    # ... which is the replicas' (they cache through it) and new for every run
    assert redis.Redis.from_url(state.redis_url).ping()
    assert state.redis_password
    assert state.redis_password != second.state().redis_password
    # ... and never on a command line, which every local user can read
    for record in state.processes():
        command_line = Path(f"/proc/{record.pid}/cmdline").read_bytes()
        assert state.redis_password.encode() not in command_line, record.name


def test_the_work_directory_and_every_file_with_a_secret_or_a_log_are_private(
    start_topology: StartTopology,
) -> None:
    state = start_topology(replicas=1).state()
    workdir = Path(state.workdir)

    assert mode(workdir) == 0o700
    for private in (
        workdir / "state.json",
        Path(state.haproxy_config),
        workdir / "redis-auth.conf",
    ):
        assert mode(private) == 0o600, private
    logs = sorted((workdir / "logs").iterdir())
    assert {log.name for log in logs} == {"haproxy.log", "redis.log", "replica-1.log"}
    assert {log.name: mode(log) for log in logs} == {log.name: 0o600 for log in logs}


def test_the_stats_page_needs_the_printed_password_and_hides_the_version(
    start_topology: StartTopology,
) -> None:
    state = start_topology(replicas=1).state()
    haproxy_version = subprocess.run(
        [find_programs().haproxy, "-v"], capture_output=True, text=True, check=True
    ).stdout.split()[2]  # "HAProxy version 2.6.12-1+deb12u4 ..."

    anonymous, _ = stats_page(state.stats_port, None)
    wrong, _ = stats_page(state.stats_port, (STATS_USER, "guess"))
    status, page = stats_page(state.stats_port, (STATS_USER, state.stats_password))

    assert (anonymous, wrong) == (401, 401)
    assert status == 200
    assert b"replica-1" in page
    assert haproxy_version.encode() not in page
