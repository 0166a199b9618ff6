"""Benchmark the boot's install path: the release with its wheelhouse vs installing from PyPI.

    make bench-boot    # or: .venv/bin/python bench/bench_boot.py [--runs 3] [--python PATH]

What an instance does after it has the archive (infra/boot/user_data.sh.tmpl, steps 4-8),
run here for real with this machine's architecture and a CPython 3.12:
  check the archive's SHA-256, untar it, create the venv, install the dependencies, start
  gunicorn with the app and wait until it answers the health path.
Two install paths:
  - wheelhouse: ``pip install --no-index --find-links wheelhouse`` (what the fleet does);
  - PyPI: ``pip install --require-hashes`` from the index (what it did before), the same
    pins, so the difference is the download.
The archive's size is printed too. Not a test: nothing asserts a speed. What is NOT
measured here: dnf installing python3.12 and the agents, the S3 download, EC2's own boot —
add those on EC2 before reading the grace period off this.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from app.contract import HEALTH_PATH  # noqa: E402
from infra.release import build_artifact  # noqa: E402
from infra.wheelhouse import PREBUILT_ENV  # noqa: E402

ARCHITECTURE = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def boot_once(archive: Path, sha256: str, python: str, from_pypi: bool) -> dict[str, float]:
    phases: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pyscale-boot-bench-") as scratch:
        root = Path(scratch)
        start = time.perf_counter()
        if hashlib.sha256(archive.read_bytes()).hexdigest() != sha256:
            raise SystemExit("archive hash mismatch")
        phases["check"] = time.perf_counter() - start
        t = time.perf_counter()
        with tarfile.open(archive) as tar:
            tar.extractall(root / "release", filter="data")
        phases["untar"] = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([python, "-m", "venv", root / "venv"], check=True)
        phases["venv"] = time.perf_counter() - t
        pip = [
            str(root / "venv/bin/pip"),
            "--isolated",
            "install",
            "--quiet",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--require-hashes",
            "--only-binary=:all:",
            "--no-deps",
            "--requirement",
            str(root / "release/requirements.txt"),
        ]
        if not from_pypi:
            pip[3:3] = ["--no-index", "--find-links", str(root / "release/wheelhouse")]
        t = time.perf_counter()
        subprocess.run(pip, check=True)
        phases["install"] = time.perf_counter() - t
        port = free_port()
        env = {
            **os.environ,
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(root / "metrics"),
            "APP_VERSION": "bench",
        }
        (root / "metrics").mkdir()
        t = time.perf_counter()
        server = subprocess.Popen(
            [str(root / "venv/bin/gunicorn"), "--config", "app/gunicorn.conf.py", "app.wsgi:app"],
            cwd=root / "release",
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("gunicorn did not answer") from None
                    time.sleep(0.05)
            phases["serve"] = time.perf_counter() - t
        finally:
            server.terminate()
            server.wait(timeout=30)
        phases["total"] = time.perf_counter() - start
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", default=shutil.which("python3.12") or "python3.12")
    options = parser.parse_args()
    os.environ.pop(PREBUILT_ENV, None)  # the real lock file and PyPI (cached by lock hash)
    t = time.perf_counter()
    artifact = build_artifact(
        REPO_ROOT, architecture=ARCHITECTURE, out_dir=Path(tempfile.mkdtemp())
    )
    build_seconds = time.perf_counter() - t
    again = build_artifact(REPO_ROOT, architecture=ARCHITECTURE, out_dir=Path(tempfile.mkdtemp()))
    wheels = [m for m in artifact.members if m.startswith("wheelhouse/")]
    same = "same bytes" if again.sha256 == artifact.sha256 else "DIFFERENT bytes"
    print(
        f"release for {ARCHITECTURE}: {artifact.size_bytes / 1e6:.1f} MB, {len(wheels)} wheels, "
        f"sha256 {artifact.sha256[:12]} (rebuilt: {same}), built in {build_seconds:.1f} s"
    )
    for label, from_pypi in (("wheelhouse (--no-index)", False), ("PyPI", True)):
        runs = [
            boot_once(artifact.path, artifact.sha256, options.python, from_pypi)
            for _ in range(options.runs)
        ]
        medians = {phase: statistics.median(r[phase] for r in runs) for phase in runs[0]}
        print(
            f"{label:24} "
            + "  ".join(f"{k} {v:5.2f}s" for k, v in medians.items())
            + f"  (median of {options.runs})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
