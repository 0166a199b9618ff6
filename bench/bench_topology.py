"""Benchmark the one-machine topology (HAProxy + gunicorn replicas + redis-server) with wrk.

    make bench                               # or: .venv/bin/python bench/bench_topology.py
    .venv/bin/python bench/bench_topology.py --duration 10 --connections 64

Four sweeps, every request through HAProxy, every topology started by the same code as
`pyscale local up` (pyscale.local.topology):

1. endpoints — bare hello (bench.apps:hello, the ceiling) vs cached hit (near cache and
   Redis) vs miss, on the dev stack's local shape;
2. workers per replica 1..cores (one replica);
3. replicas 1..2xcores behind HAProxy (one worker each);
4. Redis up vs down.

Results go to bench/results/<date>/ (results.md with the tables and the machine, results.json,
one PNG per sweep) and bench/results/README.md lists the runs, latest first. wrk runs on the
same cores as what it measures, so absolute figures are a floor; compare rows, not machines.
Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.contract import HEALTH_PATH, Env  # noqa: E402
from bench.bench_app import MISS_SCRIPT, parse_wrk  # noqa: E402  (one parser, one script)
from pyscale.cost.capacity import (  # noqa: E402  (`pyscale cost` reads these rows by label)
    ENDPOINT_SWEEP,
    MISS,
    NEAR_CACHE_HIT,
    REDIS_HIT,
)
from pyscale.local import processes, sizing  # noqa: E402
from pyscale.local.ports import free_port  # noqa: E402
from pyscale.local.topology import LocalTopology, TopologySpec  # noqa: E402

RESULTS_DIR = REPO_ROOT / "bench" / "results"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
REPORT_PATH = "/api/report/1000"
NEAR_CACHE_OFF = {Env.NEAR_CACHE_MAX_BYTES: "0"}
HELLO_APP = "bench.bench_topology:hello_behind_load_balancer"


# --- the bare hello, made answerable to HAProxy's health check -------------------------------

_hello = None


def hello_behind_load_balancer(environ, start_response):
    """bench.apps:hello (the app engineer's bare Flask view) plus the health path, so the
    load balancer admits it like the real app. Imported lazily: the gunicorn workers that
    serve it must not import this script's plotting libraries."""
    global _hello
    if environ.get("PATH_INFO") == HEALTH_PATH:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    if _hello is None:
        from bench.apps import hello

        _hello = hello
    return _hello(environ, start_response)


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    sweep: str
    label: str
    replicas: int
    workers: int
    path: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU (user + system) of HAProxy, the replicas and Redis per request: unlike req/s,
    # barely moved by whatever else the machine runs meanwhile.
    cpu_ms_per_request: float
    series: str = ""  # for the sweeps plotted as lines: which line the point is on


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    measurements: list[Measurement] = field(default_factory=list)

    @contextmanager
    def topology(
        self, replicas: int, workers: int, env: dict[str, str] | None = None, app: str | None = None
    ) -> Iterator[LocalTopology]:
        workdir = self.workdir / f"topology-{len(self.measurements)}-{time.monotonic_ns()}"
        topology = LocalTopology(workdir)
        spec = TopologySpec(
            replicas=replicas,
            workers=workers,
            port=free_port(),
            workdir=workdir,
            # A fresh key version per topology: no run reads another run's cache.
            extra_env={Env.APP_VERSION: f"bench-{time.monotonic_ns()}", **(env or {})},
            **({"wsgi_app": app} if app else {}),
        )
        topology.start(spec)
        try:
            yield topology
        finally:
            report = topology.stop()
            if report.leftover_pids:
                raise RuntimeError(f"processes left behind: {report.leftover_pids}")

    def measure(
        self,
        topology: LocalTopology,
        sweep: str,
        label: str,
        path: str,
        script: str | None = None,
        series: str = "",
    ) -> Measurement:
        state = topology.state()
        url = f"http://127.0.0.1:{state.port}{path}"
        if script is None:  # a miss run must not warm the keys it is about to miss
            self._wrk(url, self.args.warmup, None)
        groups = [record.pgid for record in state.processes()]
        cpu_before = sum(processes.group_cpu_seconds(pgid) for pgid in groups)
        rps, p50, p99, errors, completed = self._wrk(url, self.args.duration, script)
        cpu_seconds = sum(processes.group_cpu_seconds(pgid) for pgid in groups) - cpu_before
        measurement = Measurement(
            sweep,
            label,
            len(state.replicas),
            state.workers,
            path,
            rps,
            p50,
            p99,
            errors,
            cpu_seconds * 1000 / max(completed, 1),
            series,
        )
        self.measurements.append(measurement)
        print(
            f"  {sweep:<10} {label:<34} {rps:>9,.0f} req/s  p50 {p50:7.2f} ms  "
            f"p99 {p99:7.2f} ms  errors {errors}  CPU {measurement.cpu_ms_per_request:.2f} ms/req",
            flush=True,
        )
        return measurement

    def _wrk(self, url: str, seconds: float, script: str | None):
        command = [
            WRK, f"-t{self.args.threads}", f"-c{self.args.connections}", f"-d{seconds:g}s",
            "--latency", "--timeout", "10s",
        ]  # fmt: skip
        if script:
            script_file = self.workdir / "wrk-script.lua"
            script_file.write_text(script)
            command += ["-s", str(script_file), url, "--", str(self.args.threads)]
        else:
            command.append(url)
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        rps, p50, p99, errors, completed, *_ = parse_wrk(output)
        return rps, p50, p99, errors, completed


# --- the sweeps ------------------------------------------------------------------------------


def sweep_endpoints(bench: Bench, cores: int) -> None:
    dev = sizing.resolve(stack="dev", cores=cores)
    with bench.topology(dev.replicas, dev.workers, app=HELLO_APP) as topology:
        bench.measure(topology, "endpoints", "bare hello (ceiling)", "/")
    with bench.topology(dev.replicas, dev.workers) as topology:
        bench.measure(topology, ENDPOINT_SWEEP, NEAR_CACHE_HIT, REPORT_PATH)
    with bench.topology(dev.replicas, dev.workers, NEAR_CACHE_OFF) as topology:
        bench.measure(topology, ENDPOINT_SWEEP, REDIS_HIT, REPORT_PATH)
        bench.measure(topology, ENDPOINT_SWEEP, MISS, "/", MISS_SCRIPT)


def sweep_workers(bench: Bench, cores: int) -> None:
    for workers in range(1, cores + 1):
        with bench.topology(1, workers, NEAR_CACHE_OFF) as topology:
            bench.measure(
                topology, "workers", f"{workers} worker(s): Redis hit", REPORT_PATH, None, "hit"
            )
            bench.measure(
                topology, "workers", f"{workers} worker(s): miss", "/", MISS_SCRIPT, "miss"
            )


def sweep_replicas(bench: Bench, cores: int) -> None:
    for replicas in range(1, 2 * cores + 1):
        with bench.topology(replicas, 1, NEAR_CACHE_OFF) as topology:
            bench.measure(
                topology, "replicas", f"{replicas} replica(s): Redis hit", REPORT_PATH, None, "hit"
            )
            bench.measure(
                topology, "replicas", f"{replicas} replica(s): miss", "/", MISS_SCRIPT, "miss"
            )


def sweep_redis(bench: Bench, cores: int) -> None:
    dev = sizing.resolve(stack="dev", cores=cores)
    with bench.topology(dev.replicas, dev.workers, NEAR_CACHE_OFF) as topology:
        bench.measure(topology, "redis", "Redis up: hit (near off)", REPORT_PATH)
        topology.stop_redis()
        bench.measure(topology, "redis", "Redis down: computes (near off)", REPORT_PATH)
    with bench.topology(dev.replicas, dev.workers) as topology:
        bench.measure(topology, "redis", "Redis up: hit (near cache)", REPORT_PATH)
        topology.stop_redis()
        bench.measure(topology, "redis", "Redis down: near-cache hit", REPORT_PATH)


SWEEPS = {
    "endpoints": sweep_endpoints,
    "workers": sweep_workers,
    "replicas": sweep_replicas,
    "redis": sweep_redis,
}


# --- reporting -------------------------------------------------------------------------------


def machine(cores: int) -> dict[str, str]:
    cpu = ""
    with open("/proc/cpuinfo") if Path("/proc/cpuinfo").exists() else open(os.devnull) as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def version(command: list[str]) -> str:
        try:
            output = subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            return "missing"
        return (output.stdout or output.stderr).splitlines()[0].strip()

    return {
        "cores": str(cores),
        "cpu": cpu or platform.processor() or "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
        "haproxy": version(["haproxy", "-v"]),
        "redis": version(["redis-server", "--version"]),
        "wrk": version([WRK, "--version"]),
    }


def markdown(measurements: list[Measurement], info: dict[str, str], args, when: str) -> str:
    lines = [
        f"# One-machine topology benchmark — {when}",
        "",
        f"**{info['cores']} cores** ({info['cpu']}); {info['os']}; Python {info['python']}; "
        f"{info['haproxy']}; {info['redis']}; {info['wrk']}. "
        f"1-minute load average: {info['load_average']}.",
        "",
        f"Every request through HAProxy. wrk `-t{args.threads} -c{args.connections} "
        f"-d{args.duration}s` after a {args.warmup}s warm-up (misses: no warm-up, every "
        "request a new key), running on the same cores as what it measures. "
        "CPU ms/req is the CPU time HAProxy, the replicas and Redis spent per completed "
        "request: on a busy machine it moves far less than req/s, so compare rows by it. "
        "Produced by `make bench` (bench/bench_topology.py).",
    ]
    titles = {
        "endpoints": "Bare hello vs cached hit vs miss (dev stack's local shape)",
        "workers": "Workers per replica (1 replica)",
        "replicas": "Replicas behind HAProxy (1 worker each)",
        "redis": "Redis up vs down (dev stack's local shape)",
    }
    for sweep, title in titles.items():
        rows = [m for m in measurements if m.sweep == sweep]
        if not rows:
            continue
        lines += [
            "",
            f"## {title}",
            "",
            f"![{sweep}]({sweep}.png)",
            "",
            "| scenario | replicas x workers | req/s | p50 ms | p99 ms | errors | CPU ms/req |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {m.label} | {m.replicas} x {m.workers} | {m.requests_per_second:,.0f} | "
            f"{m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.errors} | {m.cpu_ms_per_request:.2f} |"
            for m in rows
        ]
    return "\n".join(lines) + "\n"


def plot(measurements: list[Measurement], sweep: str, path: Path) -> None:
    """Bars for the comparisons, lines for the sweeps over a count; log scales because a
    miss is two orders of magnitude slower than a hit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [m for m in measurements if m.sweep == sweep]
    if not rows:
        return
    figure, (throughput, latency, cpu) = plt.subplots(1, 3, figsize=(16, 4.5))
    if any(m.series for m in rows):
        count = "replicas" if sweep == "replicas" else "workers"
        for series in dict.fromkeys(m.series for m in rows):
            points = [m for m in rows if m.series == series]
            xs = [getattr(m, count) for m in points]
            throughput.plot(xs, [m.requests_per_second for m in points], "o-", label=series)
            latency.plot(xs, [m.p50_ms for m in points], "o-", label=f"{series} p50")
            latency.plot(xs, [m.p99_ms for m in points], "s--", label=f"{series} p99")
            cpu.plot(xs, [m.cpu_ms_per_request for m in points], "o-", label=series)
        for axes in (throughput, latency, cpu):
            axes.set_xlabel(f"{count} per replica" if count == "workers" else count)
            axes.set_xticks(sorted({getattr(m, count) for m in rows}))
            axes.set_yscale("log")
            axes.grid(True, which="both", alpha=0.3)
            axes.legend(fontsize=8)
        throughput.set_ylabel("requests / s (log; higher is better)")
        latency.set_ylabel("latency, ms (log; lower is better)")
        cpu.set_ylabel("CPU ms per request (log; lower is better)")
    else:
        positions = list(range(len(rows)))
        throughput.barh(positions, [m.requests_per_second for m in rows], color="tab:blue")
        throughput.set_yticks(positions, [m.label for m in rows], fontsize=8)
        throughput.set_xscale("log")
        throughput.set_xlabel("requests / s (log; higher is better)")
        height = 0.4
        latency.barh([p - height / 2 for p in positions], [m.p50_ms for m in rows], height)
        latency.barh([p + height / 2 for p in positions], [m.p99_ms for m in rows], height)
        latency.legend(["p50", "p99"])
        latency.set_yticks(positions, [""] * len(rows))
        latency.set_xscale("log")
        latency.set_xlabel("latency, ms (log; lower is better)")
        cpu.barh(positions, [m.cpu_ms_per_request for m in rows], color="tab:green")
        cpu.set_yticks(positions, [""] * len(rows))
        cpu.set_xscale("log")
        cpu.set_xlabel("CPU ms per request (log; lower is better)")
        for axes in (throughput, latency, cpu):
            axes.invert_yaxis()
            axes.grid(True, axis="x", which="both", alpha=0.3)
    figure.suptitle(f"pyscale one-machine topology: {sweep}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_index() -> None:
    """bench/results/README.md: every run's tables, latest first (the topology's results.md,
    and what other benchmarks wrote there, e.g. bench_slow_clients.py's slow_clients.md)."""
    runs = sorted((p for p in RESULTS_DIR.iterdir() if any(p.glob("*.md"))), reverse=True)
    lines = ["# Benchmark results (latest first)", ""]
    for run in runs:
        tables = sorted(run.glob("*.md"), key=lambda table: table.name != "results.md")
        links = ", ".join(f"[{table.stem}]({run.name}/{table.name})" for table in tables)
        lines.append(f"- {run.name}: {links}")
    (RESULTS_DIR / "README.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement (5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds (1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--sweeps", default=",".join(SWEEPS), help=f"comma-separated subset of {list(SWEEPS)}"
    )
    parser.add_argument("--output", type=Path, default=None, help="bench/results/<date>")
    args = parser.parse_args()
    unknown = set(args.sweeps.split(",")) - set(SWEEPS)
    if unknown:
        parser.error(f"--sweeps: unknown {sorted(unknown)}; choose from {list(SWEEPS)}")

    cores = sizing.local_cores()
    load_before = os.getloadavg()[0]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    output = args.output or RESULTS_DIR / when
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="pyscale-bench-topology-"))
    bench = Bench(args, workdir)
    try:
        for name in args.sweeps.split(","):
            print(f"{name}:", flush=True)
            SWEEPS[name](bench, cores)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    output.mkdir(parents=True, exist_ok=True)
    info = machine(cores)
    # Other work on the machine skews every row alike; say how busy it was.
    info["load_average"] = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    (output / "results.json").write_text(
        json.dumps(
            {
                "date": when,
                "machine": info,
                "wrk": {k: getattr(args, k) for k in ("threads", "connections", "duration")},
                "measurements": [asdict(m) for m in bench.measurements],
            },
            indent=2,
        )
        + "\n"
    )
    (output / "results.md").write_text(markdown(bench.measurements, info, args, when))
    for sweep in SWEEPS:
        plot(bench.measurements, sweep, output / f"{sweep}.png")
    if output.parent == RESULTS_DIR:
        write_index()
    relative = output.relative_to(REPO_ROOT) if output.is_relative_to(REPO_ROOT) else output
    print(f"wrote {relative}/results.md in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
