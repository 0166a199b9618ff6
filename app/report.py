"""The expensive, deterministic work behind GET /api/report/<n>.

It stands in for whatever a real app does that is worth caching (a database aggregate, a
rendered page): pure CPU in Python, cost linear in n (about 10-50 ms at n=1000 on one
core), the same bytes for the same n every time — which is what makes caching it safe.
"""

from __future__ import annotations

import hashlib
import json

MIN_N = 1
# The cap keeps any single request under roughly a quarter of a second of CPU, so no
# request can pin a worker.
MAX_N = 5000
# Pseudo-random samples per unit of n: tuned so n=1000 costs tens of milliseconds.
SAMPLES_PER_N = 150
# Bump when the report's shape or meaning changes: it is part of every cache key.
REPORT_FORMAT_VERSION = 1


class InvalidReportSizeError(ValueError):
    """n is not an integer in [MIN_N, MAX_N]."""


def parse_report_size(text: str) -> int:
    """The validated n from a URL segment; plain decimal digits only (no sign, no spaces)."""
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_N)):
        shown = repr(text[:32])
        raise InvalidReportSizeError(f"n must be an integer from {MIN_N} to {MAX_N}, got {shown}")
    n = int(text)
    if not MIN_N <= n <= MAX_N:
        raise InvalidReportSizeError(f"n must be an integer from {MIN_N} to {MAX_N}, got {n}")
    return n


def build_report(n: int) -> bytes:
    """The report for n as ready-to-send JSON bytes (what the cache stores, byte for byte)."""
    if not MIN_N <= n <= MAX_N:
        raise InvalidReportSizeError(f"n must be an integer from {MIN_N} to {MAX_N}, got {n}")
    # A linear congruential generator (Numerical Recipes constants) seeded by n: cheap,
    # deterministic across processes and Python versions, unlike random.Random's seeding
    # of str/bytes or hash randomisation.
    state = n
    total = 0
    total_squares = 0
    buckets = [0] * 10
    samples = n * SAMPLES_PER_N
    for _ in range(samples):
        state = (1664525 * state + 1013904223) & 0xFFFFFFFF
        value = state % 1000
        total += value
        total_squares += value * value
        buckets[value // 100] += 1
    mean = total / samples
    variance = total_squares / samples - mean * mean
    body = {
        "n": n,
        "samples": samples,
        "mean": round(mean, 6),
        "stdev": round(variance**0.5, 6),
        "histogram": buckets,
    }
    body["checksum"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
