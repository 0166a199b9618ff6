"""Root conftest: kept minimal. Real-server fixtures live in tests/support/fixtures.py.

Every program run in the suite (~40 of them, in-process and in subprocesses) builds its
release's wheelhouse from a small fixture instead of the lock file and PyPI
(``PYSCALE_WHEELHOUSE_DIR``, infra/wheelhouse.py): tests reach no network, and the real
download path is specified on its own in tests/infra/test_wheelhouse.py against a package
index on loopback."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from infra.wheelhouse import PREBUILT_ENV
from tests.support.wheels import fixture_wheelhouse

pytest_plugins = ["tests.support.fixtures"]
_FIXTURE_ROOT: Path | None = None


def pytest_configure(config) -> None:
    global _FIXTURE_ROOT
    _FIXTURE_ROOT = Path(tempfile.mkdtemp(prefix="pyscale-wheelhouse-"))
    os.environ[PREBUILT_ENV] = str(fixture_wheelhouse(_FIXTURE_ROOT))


def pytest_unconfigure(config) -> None:
    if _FIXTURE_ROOT is not None:
        shutil.rmtree(_FIXTURE_ROOT, ignore_errors=True)
