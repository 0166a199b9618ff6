"""Fixtures that start the real one-machine topology (redis-server, gunicorn, HAProxy)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyscale.local.ports import free_port
from pyscale.local.topology import LocalTopology, TopologySpec

StartTopology = Callable[..., LocalTopology]


@pytest.fixture
def start_topology(tmp_path: Path) -> Iterator[StartTopology]:
    """Start a topology on free loopback ports; stop it after the test and check that no
    process of it survived, whatever the test did to it."""
    started: list[LocalTopology] = []

    def start(replicas: int = 3, workers: int = 1, **env: str) -> LocalTopology:
        workdir = tmp_path / f"topology-{len(started)}"
        topology = LocalTopology(workdir)
        started.append(topology)
        topology.start(
            TopologySpec(
                replicas=replicas,
                workers=workers,
                port=free_port(),
                workdir=workdir,
                extra_env=env,
            )
        )
        return topology

    yield start
    for topology in started:
        report = topology.stop()
        assert report.leftover_pids == (), f"processes left behind: {report.leftover_pids}"
