"""Benchmark `pyscale plan --stack prod` end to end: wall and CPU time over several runs.

    make bench-plan                                  # or: .venv/bin/python bench/bench_plan.py
    .venv/bin/python bench/bench_plan.py --runs 10 --stack staging

Each run is a fresh `pyscale plan` process (the installed entry point), as a person or CI
starts it, its output thrown away. Two interpreter set-ups are measured, because most of
the time is Python compiling the Pulumi AWS SDK's modules:

- bytecode cached: what every run after the first sees on a normal machine (Python writes
  `__pycache__`); here the cache lives in a private PYTHONPYCACHEPREFIX, filled by one
  warm-up run, so the benchmark never writes into .venv;
- no bytecode: every module compiled from source each run (PYTHONDONTWRITEBYTECODE=1 and
  an empty cache prefix) — a first run, or an environment that forbids writing bytecode.

Then one in-process breakdown by phase (imports, the program under the offline runner,
building the plan, rendering). The target is <= 5 s wall on 2 cores; CPU time is printed
too because wall time on a shared machine includes waiting for other processes. Not a test:
nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
PYSCALE = Path(sys.executable).with_name("pyscale")
TARGET_SECONDS = 5.0

# Run in a child interpreter so the phases include the imports a real run pays for.
PHASES_SCRIPT = """
import io, json, sys, time
from rich.console import Console
t0 = time.perf_counter()
import pyscale.cli
from pyscale.offline import run_stack
from pyscale.plan import build_plan
from pyscale.plan.render import plan_renderable
t1 = time.perf_counter()
run = run_stack(sys.argv[1])
t2 = time.perf_counter()
plan = build_plan(run)
t3 = time.perf_counter()
Console(file=io.StringIO(), width=160).print(plan_renderable(plan))
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "program run": t2 - t1, "build plan": t3 - t2,
                  "render": t4 - t3, "resources": plan["summary"]["resources"]}))
"""


@dataclass
class Sample:
    wall: float
    cpu: float


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def environment(pycache: Path, write_bytecode: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULUMI_"))}
    env.update(PYTHONPYCACHEPREFIX=str(pycache), COLUMNS="160")
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def timed_plan(stack: str, env: dict[str, str]) -> Sample:
    cpu_before = child_cpu_seconds()
    started = time.perf_counter()
    subprocess.run(
        [str(PYSCALE), "plan", "--stack", stack],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return Sample(time.perf_counter() - started, child_cpu_seconds() - cpu_before)


def phases(stack: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PHASES_SCRIPT, stack],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per set-up")
    args = parser.parse_args()
    console = Console()

    table = Table(
        title=f"`pyscale plan --stack {args.stack}`, {args.runs} runs per set-up "
        f"(target <= {TARGET_SECONDS:g} s wall on 2 cores)",
        title_justify="left",
    )
    for column in ("set-up", "wall median", "wall min", "wall max", "CPU median", "<= target"):
        table.add_column(column, justify="left" if column == "set-up" else "right")

    with tempfile.TemporaryDirectory(prefix="pyscale-bench-pyc-") as scratch:
        cached = environment(Path(scratch) / "cached", write_bytecode=True)
        uncached = environment(Path(scratch) / "never-written", write_bytecode=False)
        timed_plan(args.stack, cached)  # warm-up: fills the private bytecode cache
        for label, env in (("bytecode cached", cached), ("no bytecode", uncached)):
            samples = []
            for index in range(args.runs):
                samples.append(timed_plan(args.stack, env))
                console.print(f"  {label} run {index + 1}: {samples[-1].wall:.2f} s", style="dim")
            walls = [sample.wall for sample in samples]
            median = statistics.median(walls)
            table.add_row(
                label,
                f"{median:.2f} s",
                f"{min(walls):.2f} s",
                f"{max(walls):.2f} s",
                f"{statistics.median(sample.cpu for sample in samples):.2f} s",
                "yes" if median <= TARGET_SECONDS else "no",
            )
        runs = [phases(args.stack, cached) for _ in range(args.runs)]

    console.print(table)
    resources = runs[0].pop("resources")
    for run in runs[1:]:
        run.pop("resources")
    console.print(
        f"By phase, in process, bytecode cached ({resources:.0f} resources; median of "
        f"{args.runs}; the program run includes importing the pulumi_aws modules it uses):"
    )
    detail = Table()
    detail.add_column("phase")
    detail.add_column("wall median", justify="right")
    for phase in runs[0]:
        detail.add_row(phase, f"{statistics.median(run[phase] for run in runs):.2f} s")
    console.print(detail)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    console.print(
        f"{os.cpu_count()} cores, load average {load}, Python {sys.version.split()[0]}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


if __name__ == "__main__":
    main()
