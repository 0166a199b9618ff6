"""How many gunicorn workers a machine gets — the one formula app/gunicorn.conf.py and
`pyscale local` share — and how many requests a proxy in front may send it at once.

    workers = WEB_CONCURRENCY, else vcpus + 1

where vcpus is what this process may run on: its CPU affinity, capped by a cgroup v2 CPU
quota (a container limited to 1.5 CPUs gets 2). The report is CPU-bound under the GIL, so
one process per vCPU is what uses the machine; the extra one covers a worker that is
recycling or blocked on I/O. Measured on 2 vCPUs (2 / 3 / 5 workers): misses 46 / 60 / 41
req/s, near-cache hits within 6% of each other; 2 x vCPUs + 1 was worst on both.

Pure functions only: importing this module reads nothing and changes nothing, so anything
may import it (gunicorn's config file, the local runner, tests). WEB_CONCURRENCY itself is
read and validated where every variable is, in app/settings.py; `workers_for` takes its value.
`python -m app.sizing` prints `admitted_requests` for this machine and environment (the EC2
boot script sets its proxy's limit from it).
"""

from __future__ import annotations

import math
import os

CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def available_vcpus(cpu_max_file: str = CGROUP_CPU_MAX) -> int:
    """vCPUs this process may use: CPU affinity, capped by a cgroup v2 CPU quota if any."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    try:
        with open(cpu_max_file) as quota_file:
            quota, period = quota_file.read().split()
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 CPU controller here, or a file we don't understand: no cap
    return max(1, count)


def default_workers(vcpus: int) -> int:
    """The documented formula: one worker per vCPU, plus one."""
    return vcpus + 1


def workers_for(web_concurrency: int | None, vcpus: int | None = None) -> int:
    """WEB_CONCURRENCY when set (the validated value), else the formula for `vcpus`
    (default: what this process may run on)."""
    if web_concurrency is not None:
        return web_concurrency
    return default_workers(available_vcpus() if vcpus is None else vcpus)


def admitted_requests(workers: int, threads: int) -> int:
    """Requests a proxy may send one gunicorn at once: every thread (workers x threads) but
    one, kept free for the load balancer's health check, so a gunicorn busy with slow
    requests still answers it instead of being taken out of service for being busy. The rest
    wait in the proxy's queue. A single-thread gunicorn has no thread to spare.

    One free thread in all, not per worker: the kernel hands a connection to whichever
    worker accepts it, so a check can still wait behind a busy worker's requests."""
    return max(1, workers * threads - 1)


def main() -> None:
    from app.settings import SettingsError, load_settings

    try:
        server = load_settings().server
    except SettingsError as error:
        raise SystemExit(f"pyscale app: {error}") from None
    print(admitted_requests(workers_for(server.web_concurrency), server.web_threads))


if __name__ == "__main__":
    main()
