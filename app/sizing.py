"""How many gunicorn workers a machine gets: the one formula app/gunicorn.conf.py and
`pyscale local` share.

    workers = WEB_CONCURRENCY, else vcpus + 1

where vcpus is what this process may run on: its CPU affinity, capped by a cgroup v2 CPU
quota (a container limited to 1.5 CPUs gets 2). The report is CPU-bound under the GIL, so
one process per vCPU is what uses the machine; the extra one covers a worker that is
recycling or blocked on I/O. Measured on 2 vCPUs (2 / 3 / 5 workers): misses 46 / 60 / 41
req/s, near-cache hits within 6% of each other; 2 x vCPUs + 1 was worst on both.

Pure functions only: importing this module reads nothing and changes nothing, so anything
may import it (gunicorn's config file, the local runner, tests). WEB_CONCURRENCY itself is
read and validated where every variable is, in app/settings.py; `workers_for` takes its value.
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
