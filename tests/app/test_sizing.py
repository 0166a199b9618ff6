"""app/sizing.py: the worker formula gunicorn.conf.py and `pyscale local` share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app import sizing

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_cgroup_cpu_quota_caps_the_vcpu_count(tmp_path):
    unlimited, one_and_a_half = tmp_path / "unlimited", tmp_path / "quota"
    unlimited.write_text("max 100000\n")
    one_and_a_half.write_text("150000 100000\n")

    uncapped = sizing.available_vcpus(str(unlimited))

    assert uncapped == len(os.sched_getaffinity(0))
    assert sizing.available_vcpus(str(one_and_a_half)) == min(uncapped, 2)
    assert sizing.available_vcpus(str(tmp_path / "no-cgroup")) == uncapped


def test_a_quota_below_one_cpu_still_gets_one_vcpu_and_garbage_is_ignored(tmp_path):
    tenth, garbage = tmp_path / "tenth", tmp_path / "garbage"
    tenth.write_text("10000 100000\n")
    garbage.write_text("lots\n")

    assert sizing.available_vcpus(str(tenth)) == 1
    assert sizing.available_vcpus(str(garbage)) == sizing.available_vcpus(str(tmp_path / "none"))


def test_workers_are_one_per_vcpu_plus_one_unless_web_concurrency_says_otherwise():
    assert sizing.default_workers(4) == 5
    assert sizing.workers_for(None, vcpus=4) == 5
    assert sizing.workers_for(7, vcpus=4) == 7
    assert sizing.workers_for(None) == sizing.available_vcpus() + 1


def test_importing_it_reads_and_changes_nothing():
    # GIVEN an environment the app rejects (gunicorn.conf.py exits on it) and a fresh
    # interpreter, so nothing else has imported the app's modules yet
    environ = {**os.environ, "WEB_CONCURRENCY": "not-a-number", "REDIS_URL": "nonsense"}
    probe = (
        "import json, os, sys; before = dict(os.environ); import app.sizing; "
        "print(json.dumps([dict(os.environ) == before, "
        "sorted(m for m in sys.modules if m.split('.')[0] == 'app')]))"
    )

    # WHEN it imports app.sizing
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=environ,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    # THEN the import succeeded, left the environment alone and loaded nothing else of app
    assert result.returncode == 0, result.stderr
    environment_unchanged, app_modules = json.loads(result.stdout)
    assert environment_unchanged
    assert app_modules == ["app", "app.sizing"]
