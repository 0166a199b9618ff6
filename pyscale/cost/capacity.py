"""What a stack can serve, from the committed benchmark results (bench/results/<date>/).

The benchmark (bench/bench_topology.py) records, per scenario, the CPU time HAProxy, the app
replicas and Redis spent per completed request. One CPU busy for one second therefore serves
``1000 / cpu_ms_per_request`` requests: the per-core throughput used here. From it:

- one instance at the stack's CPU target serves ``vCPUs x target x per-core`` requests/s;
- the ALB request-count target caps each instance at ``requestsPerTarget / 60`` requests/s
  (AWS: the target is "the optimal average request count per instance during any one-minute
  interval"), and with several target-tracking policies "the Auto Scaling group scales based
  on the policy that provides the largest capacity" (EC2 Auto Scaling User Guide, target
  tracking), so each instance carries the smaller of the two;
- the fleet serves that times its instance count, at min and at max size.

Everything here is an extrapolation and says so in the document: the per-core figure was
measured on one machine's CPU model, counts HAProxy and Redis CPU that on AWS runs in the ALB
and ElastiCache (so it understates an app instance), and a Graviton vCPU is a physical core
while an x86 vCPU is a hyperthread. No figure is typed by hand: rerunning the benchmark writes
a newer results directory, and the newest one that measured the endpoint scenarios is
used.

Importing this module stays cheap (no Pulumi SDK): bench/bench_topology.py imports its
scenario labels from here, so the labels it writes and the ones read here are one constant.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
RESULTS_FILE = "results.json"
SECONDS_PER_MONTH = 730 * 3600

# The endpoint sweep's scenarios whose CPU per request sizes a stack (bench_topology.py
# writes these labels).
ENDPOINT_SWEEP = "endpoints"
NEAR_CACHE_HIT = "cached hit (near cache)"
REDIS_HIT = "cached hit (Redis, near off)"
MISS = "miss (compute n≈1000 + store)"
SCENARIOS: Mapping[str, str] = {
    "near_cache_hit": NEAR_CACHE_HIT,
    "redis_hit": REDIS_HIT,
    "miss": MISS,
}
SCENARIO_TITLES: Mapping[str, str] = {
    "near_cache_hit": "near-cache hit",
    "redis_hit": "Redis hit",
    "miss": "miss (computes)",
}


class BenchmarkError(ValueError):
    """No usable results file: one message naming the file and what is missing."""


@dataclass(frozen=True)
class Benchmark:
    path: Path
    date: str
    machine: Mapping[str, str]
    cpu_ms_per_request: Mapping[str, float]  # by scenario key

    def per_core_rps(self, scenario: str) -> float:
        return 1000.0 / self.cpu_ms_per_request[scenario]

    @property
    def cpu_model(self) -> str:
        return str(self.machine.get("cpu", "unknown CPU"))

    @property
    def architecture(self) -> str:
        os_name = str(self.machine.get("os", ""))
        for arch in ("x86_64", "aarch64", "arm64"):
            if arch in os_name:
                return "arm64" if arch in ("aarch64", "arm64") else "x86_64"
        return "unknown"

    def relative_path(self) -> str:
        try:
            return str(self.path.relative_to(REPO_ROOT))
        except ValueError:
            return str(self.path)


def newest_results(results_dir: Path = RESULTS_DIR) -> Path:
    """The results.json of the newest dated run that measured the endpoint scenarios
    (directory names are ISO dates; a run of other sweeps only, e.g. ``--sweeps redis``,
    leaves the previous figures in force)."""
    runs = sorted(
        (path / RESULTS_FILE for path in results_dir.iterdir() if (path / RESULTS_FILE).is_file()),
        key=lambda path: path.parent.name,
        reverse=True,
    )
    for path in runs:
        try:
            load_benchmark(path)
        except BenchmarkError:
            continue
        return path
    raise BenchmarkError(
        f"no benchmark results with the {ENDPOINT_SWEEP!r} sweep under {results_dir} (run "
        f"`make bench` to write bench/results/<date>/{RESULTS_FILE})"
    )


def load_benchmark(path: Path | None = None) -> Benchmark:
    path = path or newest_results()
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise BenchmarkError(f"{path}: cannot read benchmark results ({error})") from None
    found: dict[str, float] = {}
    for measurement in document.get("measurements", []):
        if measurement.get("sweep") != ENDPOINT_SWEEP:
            continue
        for key, label in SCENARIOS.items():
            cpu_ms = measurement.get("cpu_ms_per_request")
            if measurement.get("label") == label and isinstance(cpu_ms, int | float) and cpu_ms > 0:
                found[key] = float(cpu_ms)
    missing = [label for key, label in SCENARIOS.items() if key not in found]
    if missing:
        raise BenchmarkError(
            f"{path}: the {ENDPOINT_SWEEP!r} sweep has no CPU ms per request for "
            + ", ".join(repr(label) for label in missing)
        )
    return Benchmark(
        path, str(document.get("date", path.parent.name)), document.get("machine", {}), found
    )


# --------------------------------------------------------------------------------------------
# Capacity of a fleet
# --------------------------------------------------------------------------------------------
INSTANCE = "instance"
POD = "pod"


@dataclass(frozen=True)
class Fleet:
    """What the capacity figures need to know of a stack's fleet (read from its resources).

    On ec2 the unit is an instance of the Auto Scaling group. On eks it is an app pod:
    ``vcpus`` is its CPU request, min and max the HPA's replicas, the CPU target the HPA's
    (a share of the request, as the HPA measures utilisation), and ``instance_type`` the
    node group's; ``nodes_at_min``/``nodes_at_max`` are the nodes those pods keep running.
    """

    instance_type: str
    vcpus: float | None
    architecture: str | None
    min_size: int
    desired: int
    max_size: int
    cpu_target_percent: float | None
    requests_per_target_per_minute: float | None
    unit: str = INSTANCE
    nodes_at_min: int | None = None
    nodes_at_max: int | None = None


def capacity(
    fleet: Fleet,
    benchmark: Benchmark,
    monthly_cost_at: Any,
) -> dict[str, Any]:
    """The capacity section of the cost document. ``monthly_cost_at(n)`` is the stack's
    priced monthly total with ``n`` instances."""
    request_cap = (
        fleet.requests_per_target_per_minute / 60 if fleet.requests_per_target_per_minute else None
    )
    scenarios = []
    for key in SCENARIOS:
        per_core = benchmark.per_core_rps(key)
        at_cpu = (
            fleet.vcpus * (fleet.cpu_target_percent / 100) * per_core
            if fleet.vcpus and fleet.cpu_target_percent
            else None
        )
        candidates = [value for value in (at_cpu, request_cap) if value is not None]
        served = min(candidates) if candidates else None
        binding = None
        if served is not None:
            binding = (
                "requests_per_target"
                if request_cap is not None and served == request_cap
                else "cpu_target"
            )
        entry: dict[str, Any] = {
            "scenario": key,
            "title": SCENARIO_TITLES[key],
            "cpu_ms_per_request": round(benchmark.cpu_ms_per_request[key], 4),
            "per_core_rps": _round(per_core),
            "per_instance_rps_at_cpu_target": _round(at_cpu),
            "per_instance_rps_served": _round(served),
            "binding_target": binding,
            "fleet_rps_at_min": _round(served * fleet.min_size if served is not None else None),
            "fleet_rps_at_max": _round(served * fleet.max_size if served is not None else None),
            "fleet_rps_at_max_cpu_target_only": _round(
                at_cpu * fleet.max_size if at_cpu is not None else None
            ),
            "usd_per_million_requests_at_min": _per_million(
                monthly_cost_at(fleet.min_size), served, fleet.min_size
            ),
            "usd_per_million_requests_at_max": _per_million(
                monthly_cost_at(fleet.max_size), served, fleet.max_size
            ),
        }
        scenarios.append(entry)
    return {
        "benchmark": {
            "path": benchmark.relative_path(),
            "date": benchmark.date,
            "cores": benchmark.machine.get("cores"),
            "cpu": benchmark.cpu_model,
            "architecture": benchmark.architecture,
            "os": benchmark.machine.get("os"),
        },
        "fleet": {
            "unit": fleet.unit,
            "instance_type": fleet.instance_type,
            "vcpus": fleet.vcpus,
            "nodes_at_min": fleet.nodes_at_min,
            "nodes_at_max": fleet.nodes_at_max,
            "architecture": fleet.architecture,
            "min_size": fleet.min_size,
            "desired_capacity": fleet.desired,
            "max_size": fleet.max_size,
            "cpu_target_percent": fleet.cpu_target_percent,
            "requests_per_target_per_minute": fleet.requests_per_target_per_minute,
            "request_target_rps_per_instance": _round(request_cap),
        },
        "scenarios": scenarios,
        "extrapolations": extrapolations(fleet, benchmark),
    }


def extrapolations(fleet: Fleet, benchmark: Benchmark) -> list[str]:
    """Plain statements of where the capacity figures go beyond what was measured."""
    notes = [
        f"Per-core throughput was measured on {benchmark.machine.get('cores', '?')} "
        f"{benchmark.architecture} vCPUs ({benchmark.cpu_model}) on {benchmark.date}, with "
        "HAProxy, the app and Redis on the same cores; on AWS the ALB and ElastiCache carry "
        "that work, so one instance likely serves more than shown.",
        "Throughput is taken to scale linearly with vCPUs and with the CPU target; neither "
        "was measured on the stack's instance type.",
    ]
    if fleet.unit == POD:
        notes.append(
            "A pod's figure is its CPU request x the HPA's CPU target (the HPA measures "
            "utilisation against the request); with no CPU limit a pod may use idle CPU of its "
            "node beyond that, and the node count for a number of pods is how many fit by "
            "their requests next to the node's DaemonSets (as the Cluster Autoscaler packs "
            "them), within the node group's min and max."
        )
    if fleet.vcpus is None and fleet.unit == INSTANCE:
        notes.append(
            f"{fleet.instance_type}'s vCPU count is not derivable from its name "
            "(infra/instance_types.py), so no per-instance figure is computed."
        )
    family = fleet.instance_type.split(".", 1)[0]
    if family[:1] == "t" and family[1:2].isdigit():
        notes.append(
            f"{fleet.instance_type} is burstable: held at {fleet.cpu_target_percent or 0:g}% CPU "
            "it "
            "runs above its baseline, which unlimited mode (the default for T4g, T3a and T3) "
            "bills as surplus CPU credits (the CPU credits line); standard mode would throttle "
            "instead, and the figures here would not hold."
        )
    if fleet.architecture and fleet.architecture != benchmark.architecture:
        notes.append(
            f"The fleet runs {fleet.architecture} ({fleet.instance_type}) but the benchmark ran "
            f"on {benchmark.architecture}: a Graviton vCPU is a physical core while an x86 vCPU "
            "is a hyperthread, and no arm64 run is committed, so the per-vCPU figure is carried "
            "over unmeasured."
        )
    return notes


def _per_million(monthly_usd: float | None, rps: float | None, instances: int) -> float | None:
    if monthly_usd is None or not rps:
        return None
    monthly_requests = rps * instances * SECONDS_PER_MONTH
    return round(monthly_usd / (monthly_requests / 1_000_000), 4)


def _round(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, 1)
