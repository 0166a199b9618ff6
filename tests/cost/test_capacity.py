"""Capacity from the committed benchmark results: the newest run is used, per-core throughput
is 1000 / CPU ms per request, the targets bound an instance, and every figure that goes
beyond the measurement says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyscale.cost import capacity
from pyscale.cost.capacity import (
    ENDPOINT_SWEEP,
    SCENARIOS,
    BenchmarkError,
    Fleet,
    load_benchmark,
    newest_results,
)


def write_results(directory: Path, cpu_ms: dict[str, float], *, cpu: str = "AMD EPYC") -> Path:
    directory.mkdir(parents=True)
    measurements = [
        {"sweep": ENDPOINT_SWEEP, "label": SCENARIOS[key], "cpu_ms_per_request": value}
        for key, value in cpu_ms.items()
    ]
    measurements.append({"sweep": "workers", "label": SCENARIOS["miss"], "cpu_ms_per_request": 1.0})
    document = {
        "date": directory.name,
        "machine": {"cores": "2", "cpu": cpu, "os": "Linux-6.1-x86_64-with-glibc2.36"},
        "measurements": measurements,
    }
    path = directory / "results.json"
    path.write_text(json.dumps(document))
    return path


ALL = {"near_cache_hit": 0.5, "redis_hit": 1.0, "miss": 40.0}


def fleet(**changes: Any) -> Fleet:
    values: dict[str, Any] = {
        "instance_type": "m7g.large",
        "vcpus": 2,
        "architecture": "arm64",
        "min_size": 3,
        "desired": 3,
        "max_size": 12,
        "cpu_target_percent": 50.0,
        "requests_per_target_per_minute": None,
    }
    return Fleet(**{**values, **changes})


def by_scenario(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["scenario"]: entry for entry in section["scenarios"]}


def test_the_newest_dated_results_directory_is_used(tmp_path: Path) -> None:
    write_results(tmp_path / "2026-11-25", ALL)
    newer = write_results(tmp_path / "2027-01-10", {**ALL, "redis_hit": 2.0})
    (tmp_path / "2027-02-01").mkdir()  # a run that wrote no results.json is not a run
    assert newest_results(tmp_path) == newer
    assert load_benchmark(newer).per_core_rps("redis_hit") == pytest.approx(500.0)


def test_per_instance_throughput_is_vcpus_times_cpu_target_times_per_core(tmp_path: Path) -> None:
    bench = load_benchmark(write_results(tmp_path / "2026-11-25", ALL))
    section = capacity.capacity(fleet(), bench, lambda instances: 100.0 + 10.0 * instances)
    redis = by_scenario(section)["redis_hit"]
    assert redis["per_core_rps"] == 1000.0  # 1000 / 1.0 ms
    assert redis["per_instance_rps_at_cpu_target"] == 2 * 0.5 * 1000.0
    assert redis["binding_target"] == "cpu_target"
    assert redis["fleet_rps_at_min"] == 3 * 1000.0
    assert redis["fleet_rps_at_max"] == 12 * 1000.0


def test_the_request_count_target_caps_what_an_instance_carries(tmp_path: Path) -> None:
    # 1000 requests per instance a minute: AWS scales on whichever target needs more
    # instances, so at the targets an instance serves at most 1000 / 60 req/s.
    bench = load_benchmark(write_results(tmp_path / "2026-11-25", ALL))
    section = capacity.capacity(
        fleet(requests_per_target_per_minute=1000.0), bench, lambda n: 10.0 * n
    )
    near = by_scenario(section)["near_cache_hit"]
    assert near["per_instance_rps_at_cpu_target"] == 2000.0
    assert near["per_instance_rps_served"] == pytest.approx(1000 / 60, abs=0.05)
    assert near["binding_target"] == "requests_per_target"
    assert near["fleet_rps_at_max_cpu_target_only"] == 12 * 2000.0


def test_cost_per_million_requests_is_the_monthly_cost_over_the_months_requests(
    tmp_path: Path,
) -> None:
    bench = load_benchmark(write_results(tmp_path / "2026-11-25", ALL))
    section = capacity.capacity(fleet(), bench, lambda instances: 100.0 * instances)
    miss = by_scenario(section)["miss"]  # 2 x 0.5 x 25 = 25 req/s per instance
    monthly_requests_at_max = 25.0 * 12 * 730 * 3600
    expected = 1200.0 / (monthly_requests_at_max / 1_000_000)
    assert miss["usd_per_million_requests_at_max"] == pytest.approx(expected, rel=1e-3)


def test_graviton_from_an_x86_benchmark_and_burstable_types_are_stated_extrapolations(
    tmp_path: Path,
) -> None:
    bench = load_benchmark(write_results(tmp_path / "2026-11-25", ALL))
    notes = " ".join(capacity.capacity(fleet(), bench, lambda n: 1.0)["extrapolations"])
    for fragment in ("arm64", "x86_64", "AMD EPYC"):
        assert fragment in notes
    assert "burstable" not in notes
    burstable = " ".join(
        capacity.capacity(fleet(instance_type="t4g.small"), bench, lambda n: 1.0)["extrapolations"]
    )
    assert "t4g.small is burstable" in burstable
    assert "CPU credits" in burstable
    same_arch = capacity.capacity(
        fleet(architecture="x86_64", instance_type="m7i.large"), bench, lambda n: 1.0
    )
    assert "Graviton" not in " ".join(same_arch["extrapolations"])


def test_an_unknown_vcpu_count_gives_no_per_instance_figure_and_says_why(tmp_path: Path) -> None:
    bench = load_benchmark(write_results(tmp_path / "2026-11-25", ALL))
    section = capacity.capacity(fleet(vcpus=None), bench, lambda n: 1.0)
    assert by_scenario(section)["redis_hit"]["per_instance_rps_at_cpu_target"] is None
    assert any("vCPU count is not derivable" in note for note in section["extrapolations"])


def test_results_without_a_scenario_are_refused_naming_it(tmp_path: Path) -> None:
    path = write_results(tmp_path / "2026-11-25", {"near_cache_hit": 0.5, "redis_hit": 1.0})
    with pytest.raises(BenchmarkError, match="miss"):
        load_benchmark(path)
    with pytest.raises(BenchmarkError, match="no benchmark results with the 'endpoints' sweep"):
        newest_results(tmp_path)


def test_a_newer_run_of_other_sweeps_leaves_the_last_endpoint_figures_in_force(
    tmp_path: Path,
) -> None:
    measured = write_results(tmp_path / "2026-11-25", ALL)
    write_results(tmp_path / "2026-12-01", {"redis_hit": 2.0})  # e.g. `--sweeps redis`
    assert newest_results(tmp_path) == measured


def test_the_committed_results_are_what_each_stacks_capacity_quotes(cost_json) -> None:
    bench = load_benchmark()
    section = cost_json("prod")["capacity"]
    assert section["benchmark"]["path"] == bench.relative_path()
    for key, entry in by_scenario(section).items():
        assert entry["per_core_rps"] == pytest.approx(bench.per_core_rps(key), abs=0.05)


def test_the_benchmark_writes_the_scenario_labels_capacity_reads(monkeypatch) -> None:
    # bench/bench_topology.py's endpoint sweep, with its topologies replaced by a recorder.
    import contextlib
    from types import SimpleNamespace

    from bench import bench_topology

    measured: list[tuple[str, str]] = []

    class Recorder:
        @contextlib.contextmanager
        def topology(self, *args: Any, **kwargs: Any):
            yield None

        def measure(self, topology: Any, sweep: str, label: str, *args: Any) -> None:
            measured.append((sweep, label))

    monkeypatch.setattr(
        bench_topology.sizing, "resolve", lambda **kwargs: SimpleNamespace(replicas=1, workers=2)
    )
    bench_topology.sweep_endpoints(Recorder(), cores=2)
    assert {(ENDPOINT_SWEEP, label) for label in SCENARIOS.values()} <= set(measured)


def test_a_rerun_benchmark_moves_the_figures_with_it(run_cli, tmp_path: Path) -> None:
    # `make bench` writes a newer results file; pointing at one changes the capacity only.
    rerun = write_results(
        tmp_path / "2027-01-10", {"near_cache_hit": 0.25, "redis_hit": 0.5, "miss": 20.0}
    )
    result = run_cli("cost", "--stack", "prod", "--json", "--results", str(rerun))
    assert result.exit_code == 0, result.stderr
    section = json.loads(result.stdout)["capacity"]
    assert section["benchmark"]["date"] == "2027-01-10"
    assert by_scenario(section)["redis_hit"]["per_core_rps"] == 2000.0
    vcpus, target = section["fleet"]["vcpus"], section["fleet"]["cpu_target_percent"] / 100
    assert (
        by_scenario(section)["redis_hit"]["per_instance_rps_at_cpu_target"]
        == vcpus * target * 2000.0
    )
