"""The one-machine topology under load and faults: real redis-server, gunicorn, HAProxy.

Each test starts its own topology on free loopback ports and puts a bounded load on it
(tests/local/loadgen.py). Conditions are polled with deadlines; nothing asserts speed.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pyscale.local import processes
from pyscale.local.errors import LocalTopologyError
from pyscale.local.haproxy import HealthCheck
from pyscale.local.ports import free_port
from pyscale.local.state import load
from pyscale.local.topology import LocalTopology, TopologySpec
from tests.local.conftest import StartTopology
from tests.local.loadgen import BoundedLoad

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
PYSCALE = [sys.executable, "-m", "pyscale.cli"]


def get(
    port: int, path: str, auth: tuple[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def poll(condition, what: str, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout_seconds} s: {what}")
        time.sleep(0.05)


def roll_while_loaded(
    workdir: str | Path, running_load: BoundedLoad
) -> subprocess.CompletedProcess:
    """`pyscale local roll`, then 50 more requests so the load outlasts the roll."""
    roll = subprocess.run(
        [*PYSCALE, "local", "roll", "--workdir", workdir],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    running_load.wait_for_requests(running_load.snapshot().total + 50)
    return roll


def test_requests_are_spread_over_every_replica(start_topology: StartTopology) -> None:
    # GIVEN three replicas behind HAProxy
    topology = start_topology(replicas=3)
    port = topology.state().port

    # WHEN a client sends requests through the load balancer
    with BoundedLoad(port, threads=2, max_requests=90) as load:
        load.wait_for_requests(90)
    result = load.stop()

    # THEN every replica answered, each by its own instance name, and HAProxy counted them
    assert result.failed == 0
    assert set(result.instances) == {"replica-1", "replica-2", "replica-3"}
    served = {row.name: row.requests for row in topology.status()}
    assert sum(served.values()) >= 90
    assert all(count > 0 for count in served.values())


def test_a_report_computed_through_one_replica_is_a_cache_hit_through_another(
    start_topology: StartTopology,
) -> None:
    topology = start_topology(replicas=2)
    first, second = topology.state().replicas

    status, headers, body_first = get(first.port, "/api/report/777")
    assert (status, headers["x-cache"]) == (200, "miss")

    status, headers, body_second = get(second.port, "/api/report/777")
    assert (status, headers["x-cache"]) == (200, "hit")
    assert headers["x-cache-layer"] == "redis"  # shared through Redis, not a near cache
    assert body_second == body_first


def test_rolling_restart_under_steady_load_fails_no_request(
    start_topology: StartTopology,
) -> None:
    # GIVEN three replicas under steady load
    topology = start_topology(replicas=3)
    state_before = topology.state()
    pids_before = {r.name: r.process.pid for r in state_before.replicas}

    with BoundedLoad(state_before.port, threads=4, max_seconds=90) as load:
        load.wait_for_requests(50)
        # WHEN `pyscale local roll` replaces every replica, one at a time
        roll = roll_while_loaded(state_before.workdir, load)
    result = load.stop()

    # THEN no request failed, and none even needed HAProxy's retry (counted over the whole
    # backend, removed replicas included): drained replicas got no new requests while they
    # stopped
    assert roll.returncode == 0, roll.stdout + roll.stderr
    assert result.failed == 0, result
    assert topology.api.backend_retries() == 0
    # ... and every replica is a new process with a new name, as a refreshed instance has a
    # new id, all UP, the old ones gone from HAProxy and from the state
    assert result.total > 100
    state_after = topology.state()
    assert len(state_after.replicas) == 3
    for replica in state_after.replicas:
        assert replica.name not in pids_before
        assert replica.process.pid not in pids_before.values()
    assert set(topology.api.server_stats()) == {r.name for r in state_after.replicas}
    assert [row.balancer_status for row in topology.status()] == ["UP", "UP", "UP"]


def test_rolling_a_single_replica_launches_before_it_drains_and_fails_no_request(
    start_topology: StartTopology,
) -> None:
    # GIVEN the dev stack's shape, what `make run` starts: one replica, under steady load
    topology = start_topology(replicas=1)
    state_before = topology.state()
    (old,) = state_before.replicas
    api = topology.api
    up_counts: list[int] = []

    def watch_up_count(_: int) -> str:
        # Every request first records how many replicas HAProxy has UP right then.
        with contextlib.suppress(OSError, LocalTopologyError):
            up_counts.append(sum(server.serving for server in api.server_stats().values()))
        return "/"

    with BoundedLoad(state_before.port, path=watch_up_count, threads=4, max_seconds=90) as load:
        load.wait_for_requests(50)
        # WHEN `pyscale local roll` replaces it
        roll = roll_while_loaded(state_before.workdir, load)
    result = load.stop()

    # THEN no request failed, HAProxy never had fewer than one replica UP, and the
    # requests were answered first by the old replica, then by its replacement
    assert roll.returncode == 0, roll.stdout + roll.stderr
    assert result.failed == 0, result
    assert len(up_counts) >= 100
    assert min(up_counts) >= 1
    (new,) = topology.state().replicas
    assert new.name != old.name
    assert new.process.pid != old.process.pid
    assert set(result.instances) == {old.name, new.name}
    status, _, body = get(state_before.port, "/")
    assert (status, json.loads(body)["instance"]) == (200, new.name)
    # ... and `status` shows exactly the new replica, UP in HAProxy
    assert [(row.name, row.balancer_status) for row in topology.status()] == [(new.name, "UP")]
    assert not processes.group_members(old.process.pgid)


def test_killing_one_replica_under_load_fails_at_most_a_tenth_of_a_percent(
    start_topology: StartTopology,
) -> None:
    # GIVEN three replicas under steady load
    topology = start_topology(replicas=3)
    api = topology.api
    with BoundedLoad(topology.state().port, threads=4, max_requests=4000) as load:
        load.wait_for_requests(300)

        # WHEN one replica's processes are all killed with SIGKILL
        topology.kill_replica("replica-2")

        # THEN HAProxy takes it out of rotation within its health-check detection window
        poll(
            lambda: not api.server_stats()["replica-2"].serving,
            "HAProxy marks replica-2 down",
            timeout_seconds=HealthCheck().detection_seconds,
        )
        sent_to_dead_replica = api.server_stats()["replica-2"].total_sessions
        after_down = load.snapshot().total
        # enough requests after the kill for 0.1% to mean something
        load.wait_for_requests(max(after_down + 500, 1200))
        # ... and sends it nothing more
        assert api.server_stats()["replica-2"].total_sessions == sent_to_dead_replica
    result = load.stop()

    assert result.total >= 1000
    assert result.failed <= result.total * 0.001, result
    assert not processes.group_members(topology.state().replica("replica-2").process.pgid)


def test_redis_stopped_and_restarted_under_load_gives_no_5xx_and_caching_resumes(
    start_topology: StartTopology,
) -> None:
    # GIVEN two replicas under load on reports, some repeated, some new
    topology = start_topology(replicas=2)
    state = topology.state()
    # Each replica's near cache keeps what it computed while Redis was away (for the TTL):
    # once the load has cycled through these reports, asking for them again never reaches
    # Redis, so after the restart the load asks for reports nobody has asked for yet.
    report_numbers: Iterator[int] = itertools.cycle(range(100, 400))

    def report_path(_: int) -> str:
        return f"/api/report/{next(report_numbers)}"

    cache = redis.Redis.from_url(state.redis_url, socket_timeout=1)
    with BoundedLoad(state.port, path=report_path, threads=4, max_seconds=90) as load:
        load.wait_for_requests(100)
        assert cache.dbsize() > 0

        # WHEN Redis stops while the requests keep coming
        topology.stop_redis()
        stopped_at = load.snapshot().total
        load.wait_for_requests(stopped_at + 200)

        # ... and comes back (empty: the local cache keeps no snapshot)
        topology.start_redis()
        report_numbers = itertools.cycle(range(400, 5001))
        # THEN the replicas fill it again by themselves
        poll(lambda: cache.dbsize() > 0, "the replicas write to Redis again", 60)
        restarted_at = load.snapshot().total
        load.wait_for_requests(restarted_at + 50)
    result = load.stop()
    cache.close()

    assert result.failed == 0, result
    assert result.statuses[200] == result.total


def launch_up_with_two_replicas(port: int, workdir: Path) -> subprocess.Popen:
    """`pyscale local up` as a user runs it: its own process, output captured."""
    return subprocess.Popen(
        [
            *PYSCALE, "local", "up",
            "--replicas", "2", "--workers", "1", "--port", str(port), "--workdir", str(workdir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
    )  # fmt: skip


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_up_stopped_by_a_signal_leaves_no_process_behind(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    # GIVEN `pyscale local up` running as a command
    workdir = tmp_path / "work"
    port = free_port()
    command = launch_up_with_two_replicas(port, workdir)
    try:
        topology = LocalTopology(workdir)

        def serving() -> bool:
            try:
                rows = topology.status()
            except Exception:
                return False
            return len(rows) == 2 and all(row.balancer_status == "UP" for row in rows)

        poll(serving, "the topology serves", 60)
        assert get(port, "/")[0] == 200
        records = load(workdir).processes()
        assert {record.name for record in records} == {
            "haproxy", "replica-1", "replica-2", "redis-server"
        }  # fmt: skip

        # ... and `pyscale local status` and HAProxy's stats page report it
        status = subprocess.run(
            [*PYSCALE, "local", "status", "--json", "--workdir", str(workdir)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        report = json.loads(status.stdout)
        assert [row["balancer_status"] for row in report["replicas"]] == ["UP", "UP"]
        assert report["redis_running"]
        assert report["haproxy_running"]
        recorded = load(workdir)
        assert (
            get(recorded.stats_port, "/;csv", auth=("pyscale", recorded.stats_password))[0] == 200
        )

        # WHEN it receives the signal
        command.send_signal(stop_signal)
        output, _ = command.communicate(timeout=90)
    finally:
        if command.poll() is None:
            command.kill()
            command.communicate()

    # THEN it exits cleanly, and no process of any of its groups remains
    assert command.returncode == 0, output
    assert "Traceback" not in output
    leftovers = [pid for record in records for pid in processes.group_members(record.pgid)]
    assert leftovers == [], output
    assert not (workdir / "state.json").exists()
    with pytest.raises(ConnectionRefusedError):
        get(port, "/")


def test_the_command_runs_its_own_processes_only_in_new_sessions(
    start_topology: StartTopology,
) -> None:
    # Why it matters: Ctrl-C in the terminal goes to the foreground process group; the
    # children must not get it directly, so `up` can stop them in order (HAProxy first).
    topology = start_topology(replicas=1)
    for record in topology.state().processes():
        assert os.getpgid(record.pid) == record.pid
        assert os.getsid(record.pid) == record.pid


def test_a_replica_that_cannot_start_stops_everything_and_shows_its_log(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    result = subprocess.run(
        [
            *PYSCALE, "local", "up", "--replicas", "1", "--workers", "1",
            "--port", str(free_port()), "--workdir", str(workdir), "--app", "no_such_module:app",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "replica-1 exited while waiting" in output
    assert "no_such_module" in output  # the tail of gunicorn's own log says why
    assert result.stderr.startswith("error: replica-1 exited")  # ours: a message, no traceback
    assert not (workdir / "state.json").exists()


def test_up_again_after_a_crash_stops_what_the_crashed_run_left(
    start_topology: StartTopology,
) -> None:
    # GIVEN a topology whose `up` died without stopping anything (its records remain)
    crashed = start_topology(replicas=1)
    orphans = crashed.state().processes()

    # WHEN a new `up` starts in the same work directory
    restarted = LocalTopology(Path(crashed.state().workdir))
    restarted.start(
        TopologySpec(replicas=1, workers=1, port=free_port(), workdir=restarted.workdir)
    )

    # THEN the crashed run's processes are gone and the new ones serve
    assert [pid for record in orphans for pid in processes.group_members(record.pgid)] == []
    assert get(restarted.state().port, "/")[0] == 200


def test_up_replaces_a_replica_that_dies_as_the_asg_would(tmp_path: Path) -> None:
    # GIVEN `pyscale local up` with two replicas
    workdir = tmp_path / "work"
    port = free_port()
    command = launch_up_with_two_replicas(port, workdir)
    topology = LocalTopology(workdir)

    def all_up() -> bool:
        try:
            rows = topology.status()
        except Exception:
            return False
        return len(rows) == 2 and all(
            row.process_running and row.balancer_status == "UP" for row in rows
        )

    try:
        poll(all_up, "the topology serves", 60)
        dead = load(workdir).replica("replica-1").process

        # WHEN one replica is killed outright
        processes.kill(dead)

        # THEN `up` starts a new one in its place and HAProxy sends to it again
        poll(
            lambda: load(workdir).replica("replica-1").process.pid != dead.pid and all_up(),
            "replica-1 replaced and UP",
            60,
        )
        records = load(workdir).processes()
        command.send_signal(signal.SIGTERM)
        output, _ = command.communicate(timeout=90)
    finally:
        if command.poll() is None:
            command.kill()
            command.communicate()

    assert "replica-1 died: replacing it" in output
    assert command.returncode == 0, output
    assert [pid for record in records for pid in processes.group_members(record.pgid)] == []
