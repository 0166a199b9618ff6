"""Slow clients against one instance's gunicorn: with and without the instance's proxy.

    .venv/bin/python bench/bench_slow_clients.py            # or: make bench-slow-clients
    .venv/bin/python bench/bench_slow_clients.py --attackers 16,128 --probe-seconds 12

What the decision in infra/boot/proxy.py rests on. An instance as the boot script sets it up
(app/gunicorn.conf.py, gthread, WORKERS x 4 threads) is started three ways:

- `direct`: gunicorn alone, as the ALB reached it before (the ALB streams request bodies);
- `direct, 32 threads`: the cheap alternative — more threads per worker, nothing in front;
- `proxy`: behind the instance's HAProxy, its configuration rendered by infra/boot/proxy.py
  (and once more with two HAProxy threads, HAProxy's default on 2 CPUs, for the hop's cost).

For each: (1) what the extra hop costs — wrk on the health path and on `/`, requests/s,
latency and CPU per request of everything serving (gunicorn + HAProxy); (2) what slow
clients do — N connections each announcing a 1000-byte body and sending a byte every 2 s
(tests/support/slow_clients.py), while the health path is probed twice a second with a 2 s
timeout (the ALB's check waits 5 s at most): the share of probes answered and their latency.

Results: bench/results/<date>/slow_clients.md and .json. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.contract import HEALTH_PATH, Env  # noqa: E402
from app.sizing import admitted_requests  # noqa: E402
from bench.bench_app import parse_wrk  # noqa: E402  (one parser)
from bench.bench_topology import write_index  # noqa: E402  (one index of the runs)
from infra.boot import proxy  # noqa: E402
from pyscale.local import processes  # noqa: E402
from pyscale.local.ports import free_port  # noqa: E402
from tests.support.slow_clients import SlowBodyClients  # noqa: E402

RESULTS_DIR = REPO_ROOT / "bench" / "results"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
GUNICORN = Path(sys.executable).with_name("gunicorn")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Setup:
    name: str
    threads: int
    behind_proxy: bool
    haproxy_threads: int = 1  # what infra/boot/proxy.py sets (nbthread)


SETUPS = (
    Setup("direct", threads=4, behind_proxy=False),
    Setup("direct, 32 threads", threads=32, behind_proxy=False),
    Setup("proxy", threads=4, behind_proxy=True),
    Setup("proxy, 2 HAProxy threads", threads=4, behind_proxy=True, haproxy_threads=2),
)


@dataclass(frozen=True)
class Throughput:
    setup: str
    path: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float
    haproxy_cpu_us_per_request: float


@dataclass(frozen=True)
class UnderAttack:
    setup: str
    attackers: int
    probes: int
    answered: int
    p50_ms: float | None
    max_ms: float | None
    attack_answers: dict[str, int]


@dataclass
class Instance:
    port: int
    groups: list[int]


def wait_healthy(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if requests.get(f"http://{LOOPBACK}:{port}{HEALTH_PATH}", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} never answered {HEALTH_PATH}")


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    os.killpg(process.pid, signum)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def instance(setup: Setup, workers: int, workdir: Path) -> Iterator[Instance]:
    gunicorn_port = free_port()
    env = {
        **os.environ,
        Env.PORT: str(gunicorn_port),
        Env.WEB_CONCURRENCY: str(workers),
        Env.WEB_THREADS: str(setup.threads),
        Env.PROMETHEUS_MULTIPROC_DIR: str(workdir / f"metrics-{gunicorn_port}"),
        Env.LOG_LEVEL: "WARNING",
    }
    command = [
        str(GUNICORN), "--config", str(REPO_ROOT / "app/gunicorn.conf.py"),
        "--bind", f"{LOOPBACK}:{gunicorn_port}", "--access-logfile", "/dev/null", "app.wsgi:app",
    ]  # fmt: skip
    app = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL
    )
    front = None
    try:
        wait_healthy(gunicorn_port, app, "gunicorn")
        port, groups = gunicorn_port, [app.pid]
        if setup.behind_proxy:
            port = free_port()
            config = workdir / f"proxy-{port}.cfg"
            rendered = proxy.render_instance_config(
                proxy.InstanceProxy(
                    listen_port=port,
                    trusted_forwarders=LOOPBACK,
                    gunicorn_port=gunicorn_port,
                    listen_address=LOOPBACK,
                )
            )
            config.write_text(
                rendered.replace("nbthread 1\n", f"nbthread {setup.haproxy_threads}\n", 1)
            )
            admitted = admitted_requests(workers, setup.threads)
            front = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(config)],
                env={**os.environ, proxy.ADMITTED_REQUESTS_VARIABLE: str(admitted)},
                start_new_session=True,
                stdout=subprocess.DEVNULL,
            )
            wait_healthy(port, front, "haproxy")
            groups.append(front.pid)
        yield Instance(port, groups)
    finally:
        if front is not None:
            stop(front, signal.SIGUSR1)
        stop(app)


def throughput(setup: Setup, target: Instance, path: str, args) -> Throughput:
    url = f"http://{LOOPBACK}:{target.port}{path}"
    wrk = [WRK, "-t2", f"-c{args.connections}", "--latency", "--timeout", "5s"]
    subprocess.run([*wrk, "-d1s", url], capture_output=True, check=True)  # warm-up
    cpu_before = [processes.group_cpu_seconds(group) for group in target.groups]
    output = subprocess.run(
        [*wrk, f"-d{args.duration}s", url], capture_output=True, text=True, check=True
    ).stdout
    cpu = [
        processes.group_cpu_seconds(group) - before
        for group, before in zip(target.groups, cpu_before, strict=True)
    ]
    rps, p50, p99, errors, completed = parse_wrk(output)
    per_request = 1e6 / max(completed, 1)
    haproxy = cpu[1] if len(cpu) > 1 else 0.0  # groups: gunicorn, then HAProxy
    return Throughput(
        setup.name, path, rps, p50, p99, errors, sum(cpu) * per_request, haproxy * per_request
    )


def under_attack(setup: Setup, target: Instance, attackers: int, args) -> UnderAttack:
    latencies: list[float] = []
    probes = 0
    with SlowBodyClients(
        target.port, connections=attackers, max_seconds=args.probe_seconds + 30
    ) as attack:
        attack.wait_for_rounds(2)  # every slow request under way
        deadline = time.monotonic() + args.probe_seconds
        while time.monotonic() < deadline:
            probes += 1
            started = time.monotonic()
            try:
                url = f"http://{LOOPBACK}:{target.port}{HEALTH_PATH}"
                if requests.get(url, timeout=2).ok:
                    latencies.append((time.monotonic() - started) * 1000)
            except requests.RequestException:
                pass
            time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
    return UnderAttack(
        setup.name,
        attackers,
        probes,
        len(latencies),
        statistics.median(latencies) if latencies else None,
        max(latencies) if latencies else None,
        {str(status): count for status, count in sorted(attack.answers.items())}
        | ({"closed": attack.closed_without_answer} if attack.closed_without_answer else {}),
    )


def median_of(rows: list[Throughput]) -> Throughput:
    def median(field: str) -> float:
        return statistics.median(getattr(row, field) for row in rows)

    return Throughput(
        rows[0].setup,
        rows[0].path,
        median("requests_per_second"),
        median("p50_ms"),
        median("p99_ms"),
        sum(row.errors for row in rows),
        median("cpu_us_per_request"),
        median("haproxy_cpu_us_per_request"),
    )


def markdown(rates: list[Throughput], attacks: list[UnderAttack], info: dict, args) -> str:
    lines = [
        "# Slow clients against one instance: gunicorn alone vs behind the instance proxy",
        "",
        f"`bench/bench_slow_clients.py` on {info['machine']}; {info['versions']}; load "
        f"average {info['load_average']}. gunicorn gthread, {args.workers} workers; wrk "
        f"-t2 -c{args.connections}, {args.duration} s per row after 1 s of warm-up, medians "
        f"of {args.rounds} interleaved rounds, over loopback (wrk shares the cores with what "
        "it measures).",
        "",
        "- **direct**: gunicorn alone; a client's bytes reach it as they arrive, as through "
        "the ALB, which streams request bodies to its targets;",
        "- **direct, 32 threads**: the same with eight times the threads per worker (the cheap "
        "alternative to a proxy);",
        "- **proxy**: behind the instance's HAProxy (infra/boot/proxy.py), as the boot script "
        "sets it up (one HAProxy thread);",
        "- **proxy, 2 HAProxy threads**: the same with HAProxy's default here (a thread per CPU).",
        "",
        "## What the hop costs",
        "",
        "| setup | path | req/s | p50 ms | p99 ms | errors | CPU µs/req, all | of it HAProxy |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.setup} | `{r.path}` | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | "
        f"{r.p99_ms:.2f} | {r.errors} | {r.cpu_us_per_request:,.0f} | "
        f"{r.haproxy_cpu_us_per_request:,.0f} |"
        for r in rates
    ]
    lines += [
        "",
        "## Slow clients",
        "",
        "N connections each announce a 1000-byte body (`POST /healthz`) and send one byte "
        f"every 2 s, reconnecting when cut off; meanwhile `GET {HEALTH_PATH}` is probed "
        f"twice a second for {args.probe_seconds} s with a 2 s timeout.",
        "",
        "| setup | slow clients | health probes answered | p50 ms | max ms | how the slow requests ended |",  # noqa: E501
        "|---|---:|---:|---:|---:|---|",
    ]
    for a in attacks:
        ended = ", ".join(f"{k}: {v}" for k, v in a.attack_answers.items()) or "still waiting"
        p50 = f"{a.p50_ms:.1f}" if a.p50_ms is not None else "-"
        worst = f"{a.max_ms:.1f}" if a.max_ms is not None else "-"
        lines.append(
            f"| {a.setup} | {a.attackers} | {a.answered}/{a.probes} | {p50} | {worst} | {ended} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (3: 2 vCPUs)")
    parser.add_argument("--attackers", default="16,128", help="slow-client counts (16,128)")
    parser.add_argument("--probe-seconds", type=int, default=12, help="probing per row (12)")
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per row (5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds, interleaved (3)")
    parser.add_argument("--output", type=Path, default=None, help="bench/results/<date>")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    samples: dict[tuple[str, str], list[Throughput]] = {}
    attacks: list[UnderAttack] = []
    workdir = Path(tempfile.mkdtemp(prefix="pyscale-bench-slow-"))
    try:
        # Rounds interleave the setups, so a burst of other work on the machine hits all alike.
        for _ in range(args.rounds):
            for setup in SETUPS:
                with instance(setup, args.workers, workdir) as target:
                    for path in (HEALTH_PATH, "/"):
                        sample = throughput(setup, target, path, args)
                        samples.setdefault((setup.name, path), []).append(sample)
                        print(sample, flush=True)
        for setup in SETUPS[:3]:  # the thread count changes nothing about buffering
            for attackers in (int(n) for n in args.attackers.split(",")):
                # A fresh instance per row: a starved one may still be busy with the last.
                with instance(setup, args.workers, workdir) as target:
                    attacks.append(under_attack(setup, target, attackers, args))
                    print(attacks[-1], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rates = [median_of(rows) for rows in samples.values()]

    haproxy = subprocess.run([HAPROXY, "-v"], capture_output=True, text=True).stdout.split()[2]
    info = {
        "machine": f"{os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}, Linux {platform.release()}",
        "versions": f"HAProxy {haproxy}",
        "load_average": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
    }
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    output = args.output or RESULTS_DIR / when
    output.mkdir(parents=True, exist_ok=True)
    (output / "slow_clients.json").write_text(
        json.dumps(
            {
                "machine": info,
                "throughput": [asdict(r) for r in rates],
                "under_attack": [asdict(a) for a in attacks],
            },
            indent=2,
        )
        + "\n"
    )
    (output / "slow_clients.md").write_text(markdown(rates, attacks, info, args))
    write_index()
    print(f"wrote {output / 'slow_clients.md'}")


if __name__ == "__main__":
    main()
