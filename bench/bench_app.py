"""Benchmark one app instance: the hello ceiling vs cached hits, misses, Redis down, Flask-Caching.

    make bench-app                              # or: .venv/bin/python bench/bench_app.py
    .venv/bin/python bench/bench_app.py --duration 10 --connections 64
    .venv/bin/python bench/bench_app.py --worker-classes gthread,sync   # the worker-class choice

One run prints one table per worker class and writes it to
bench/results/app/<date>/results.json (`--output` to choose), which `make docs` renders in
docs/benchmarks.md. Every row is gunicorn started with app/gunicorn.conf.py and the
same worker settings (only the WSGI app or the app's cache variables differ), loaded by wrk
over loopback for a bounded duration after a warm-up. Ratios are against the bare hello view
of the same worker class. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from app.contract import HEALTH_PATH, Env  # noqa: E402
from tests.support.servers import RedisServer, free_port, start_redis, wait_until  # noqa: E402

WRK = shutil.which("wrk") or "/usr/bin/wrk"
GUNICORN = Path(sys.executable).with_name("gunicorn")
GUNICORN_CONF = REPO_ROOT / "app" / "gunicorn.conf.py"
REPORT_N = 1000

# Each wrk thread walks its own sequence n = 1000 + id, 1000 + id + threads, ... so no two
# requests of a run share a key: every one is a miss, and cost stays close to n=1000.
MISS_SCRIPT = """
-- globals on purpose: setup() sets thread_index in each thread's own Lua state
counter = 0
thread_index = 0
thread_count = 1
local next_id = 0
function setup(thread)
  thread:set("thread_index", next_id)
  next_id = next_id + 1
end
function init(args)
  thread_count = tonumber(args[1])
end
function request()
  local n = 1000 + thread_index + counter * thread_count
  counter = counter + 1
  return wrk.format(nil, "/api/report/" .. n)
end
"""


@dataclass
class Row:
    name: str
    wsgi: str
    path: str
    env: dict[str, str] = field(default_factory=dict)
    redis_down: bool = False
    script: str | None = None
    note: str = ""


@dataclass
class Result:
    row: Row
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cache_outcomes: str
    cpu_us_per_request: float = 0.0
    spread: str = ""


def median_of(results: list[Result]) -> Result:
    """One row from several rounds: medians, errors summed, the min-max req/s kept."""
    rates = sorted(r.requests_per_second for r in results)
    return Result(
        results[0].row,
        statistics.median(rates),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        results[-1].cache_outcomes,
        statistics.median(r.cpu_us_per_request for r in results),
        f"{rates[0]:,.0f}-{rates[-1]:,.0f}",
    )


def rows(redis_url: str) -> list[Row]:
    report = f"/api/report/{REPORT_N}"
    near_off = {Env.NEAR_CACHE_MAX_BYTES: "0"}
    app_env = {Env.REDIS_URL: redis_url}
    return [
        Row("bare Flask hello (ceiling)", "bench.apps:hello", "/"),
        Row("cached hit, near cache", "app.wsgi:app", report, app_env),
        Row("cached hit from Redis (near off)", "app.wsgi:app", report, {**app_env, **near_off}),
        Row(
            "miss (compute n≈1000 + store)",
            "app.wsgi:app",
            "/api/report/1000",
            {**app_env, **near_off},
            script=MISS_SCRIPT,
            note="every request a new key",
        ),
        Row("hit, Redis down (near cache)", "app.wsgi:app", report, app_env, redis_down=True),
        Row(
            "Redis down, near off (computes)",
            "app.wsgi:app",
            report,
            {**app_env, **near_off},
            redis_down=True,
        ),
        Row(
            "Flask-Caching RedisCache hit",
            "bench.apps:create_flask_caching_app()",
            report,
            app_env,
        ),
    ]


def start_gunicorn(row: Row, workdir: Path, args: argparse.Namespace, worker_class: str):
    port = free_port()
    env = {
        **os.environ,
        Env.PORT: str(port),
        Env.PROMETHEUS_MULTIPROC_DIR: str(workdir / f"metrics-{port}"),
        Env.APP_VERSION: f"bench-{time.time_ns()}",
        **row.env,
    }
    if args.workers:
        env[Env.WEB_CONCURRENCY] = str(args.workers)
    log = (workdir / f"gunicorn-{port}.log").open("wb")
    command = [
        str(GUNICORN), "--config", str(GUNICORN_CONF), "--worker-class", worker_class, row.wsgi
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: see {log.name}")
        try:
            probe = HEALTH_PATH if row.wsgi.startswith("app.") else row.path
            return requests.get(base + probe, timeout=2).status_code == 200
        except requests.RequestException:  # not listening yet, or still booting
            return False

    try:
        wait_until(healthy, 30, f"gunicorn for {row.name}")
    except BaseException:
        process.terminate()
        process.wait(timeout=40)
        log.close()
        raise
    return process, base, log


def run_wrk(url: str, args: argparse.Namespace, duration: float, script: str | None, workdir):
    command = [
        WRK,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration:g}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if script:
        script_file = workdir / "wrk-script.lua"
        script_file.write_text(script)
        command += ["-s", str(script_file), url, "--", str(args.threads)]
    else:
        command.append(url)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> tuple[float, float, float, int, int]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    completed = int(re.search(r"(\d+) requests in", output).group(1))

    def percentile(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\b", output, re.MULTILINE)
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = 0
    for match in re.finditer(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(match.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    return rps, percentile("50"), percentile("99"), errors, completed


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def gunicorn_cpu_seconds(master_pid: int) -> float:
    """CPU time (user + system) of a gunicorn master and its workers, from /proc.

    Throughput on a shared machine swings with whatever else runs; the CPU a request costs
    the app barely does, so the table reports both.
    """
    total = 0.0
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue
        pid = int(stat_file.parent.name)
        fields = text[text.rindex(")") + 2 :].split()
        parent = int(fields[1])
        if pid == master_pid or parent == master_pid:
            total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return total


def cache_outcomes(base: str) -> str:
    try:
        text = requests.get(base + "/metrics", timeout=5).text
    except requests.RequestException:
        return ""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "pyscale_cache_hits_total":
                key = f"hit/{sample.labels['layer']}"
            elif sample.name == "pyscale_cache_misses_total":
                key = "miss"
            elif sample.name == "pyscale_cache_bypasses_total":
                key = "bypass"
            else:
                continue
            counts[key] = counts.get(key, 0) + sample.value
    total = sum(counts.values()) or 1
    return " ".join(f"{k} {v / total:.0%}" for k, v in sorted(counts.items()) if v)


def measure(row: Row, redis: RedisServer, workdir: Path, args, worker_class: str) -> Result:
    if row.redis_down and redis.running:
        redis.stop()
    if not row.redis_down and not redis.running:
        redis.start()
    process, base, log = start_gunicorn(row, workdir, args, worker_class)
    try:
        if row.script is None:
            run_wrk(base + row.path, args, args.warmup, None, workdir)
        cpu_before = gunicorn_cpu_seconds(process.pid)
        measured = run_wrk(base + row.path, args, args.duration, row.script, workdir)
        cpu_per_request = (gunicorn_cpu_seconds(process.pid) - cpu_before) / max(1, measured[4])
        rps, p50, p99, errors, _ = measured
        outcomes = cache_outcomes(base) if row.wsgi.startswith("app.") else ""
    finally:
        process.terminate()
        process.wait(timeout=40)
        log.close()
    return Result(row, rps, p50, p99, errors, outcomes, cpu_us_per_request=cpu_per_request * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per row (5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds per row (1)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians reported (3)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=None, help="WEB_CONCURRENCY (formula)")
    parser.add_argument(
        "--worker-classes",
        default="gthread",
        help="comma-separated gunicorn worker classes to run every row with (gthread)",
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated: run only rows whose name contains one"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="directory (bench/results/app/<date>)"
    )
    args = parser.parse_args()
    when = datetime.date.today().isoformat()
    # Apart from the topology's dated runs, which pyscale cost reads its capacity from.
    output = args.output or REPO_ROOT / "bench" / "results" / "app" / when
    load_before = os.getloadavg()[0]

    console = Console(width=150)
    workdir = Path(tempfile.mkdtemp(prefix="pyscale-bench-"))
    redis = start_redis(workdir / "redis")
    results: dict[str, list[Result]] = {}
    try:
        for worker_class in args.worker_classes.split(","):
            wanted = args.only.split(",") if args.only else [""]
            selected = [r for r in rows(redis.url) if any(w in r.name for w in wanted)]
            # Rounds interleave the rows, so a burst of load from elsewhere on the machine
            # hits every row alike instead of skewing one; each row reports its median.
            rounds: dict[str, list[Result]] = {row.name: [] for row in selected}
            for round_number in range(1, args.rounds + 1):
                for row in selected:
                    console.print(f"[dim]{worker_class} round {round_number}: {row.name}[/dim]")
                    rounds[row.name].append(measure(row, redis, workdir, args, worker_class))
            results[worker_class] = [median_of(rounds[row.name]) for row in selected]
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    cores = len(os.sched_getaffinity(0))
    for worker_class, class_results in results.items():
        workers = args.workers or f"{cores}+1 (formula)"
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        table = Table(
            title=(
                f"pyscale app on {cores} cores: gunicorn {worker_class}, workers={workers}, "
                f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
                f"median of {args.rounds} rounds "
                f"(load average at the end: {load})"
            )
        )
        columns = (
            "scenario", "req/s", "vs hello", "req/s range", "app CPU µs/req", "CPU vs hello",
            "p50 ms", "p99 ms", "errors",
        )  # fmt: skip
        for column in (*columns, "X-Cache"):
            left = column in ("scenario", "X-Cache")
            table.add_column(column, justify="left" if left else "right")
        hello = next((r for r in class_results if r.row.wsgi == "bench.apps:hello"), None)
        for result in class_results:
            ratio = (
                f"{result.requests_per_second / hello.requests_per_second:.2f}x" if hello else "-"
            )
            table.add_row(
                result.row.name,
                f"{result.requests_per_second:,.0f}",
                ratio,
                result.spread,
                f"{result.cpu_us_per_request:,.0f}",
                f"{hello.cpu_us_per_request / result.cpu_us_per_request:.2f}x" if hello else "-",
                f"{result.p50_ms:.2f}",
                f"{result.p99_ms:.2f}",
                str(result.errors),
                result.cache_outcomes,
            )
        console.print(table)
    write_results(output, when, args, results, load_before)


def write_results(
    output: Path,
    when: str,
    args: argparse.Namespace,
    results: dict[str, list[Result]],
    load_before: float,
) -> None:
    """results.json: what docs/benchmarks.md shows (pyscale/docs.py renders it)."""
    output.mkdir(parents=True, exist_ok=True)
    document = {
        "date": when,
        "machine": {
            "cores": len(os.sched_getaffinity(0)),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            # Other work on the machine skews every row alike; say how busy it was.
            "load_average": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
        },
        "wrk": {
            "threads": args.threads,
            "connections": args.connections,
            "duration": args.duration,
            "warmup": args.warmup,
            "rounds": args.rounds,
        },
        "workers": args.workers,
        "measurements": [
            {
                "worker_class": worker_class,
                "scenario": result.row.name,
                "requests_per_second": round(result.requests_per_second, 1),
                "requests_per_second_range": result.spread,
                "cpu_us_per_request": round(result.cpu_us_per_request, 1),
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "errors": result.errors,
                "x_cache": result.cache_outcomes,
                "baseline": result.row.wsgi == "bench.apps:hello",
            }
            for worker_class, class_results in results.items()
            for result in class_results
        ],
    }
    (output / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {output / 'results.json'}")


if __name__ == "__main__":
    main()
