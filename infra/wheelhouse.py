"""The release's wheelhouse: the lock file's runtime closure as wheels for one EC2
architecture, hash-checked, so an instance installs with ``pip --no-index`` and its boot
never reaches PyPI (or NAT) at all.

    wheelhouse = build_wheelhouse(requirements, "arm64")   # uv export's text
    wheelhouse.requirements   # markers evaluated for the target, hashes kept
    wheelhouse.wheels         # {file name: path}, one per requirement

Target: Amazon Linux 2023's ``python3.12`` (infra/boot installs it), CPython, glibc 2.34,
``aarch64`` (Graviton) or ``x86_64``. pip downloads the wheels — pip, not uv, because only
pip downloads for another interpreter and platform — with ``--require-hashes
--only-binary=:all: --no-deps`` from requirements whose environment markers were evaluated
here, for the target: pip evaluates markers against the interpreter running it, so a host
on Python 3.11.2 would otherwise fetch ``async-timeout`` (``python_full_version <
'3.11.3'``) and another host would not, and the archive's bytes would depend on who ran
`pulumi up`.

Downloads are cached outside the repository, by the hash of what decides them (the target
requirements, the platform tags, the Python version): ``$PYSCALE_WHEEL_CACHE``, else
``$XDG_CACHE_HOME/pyscale/wheelhouse``, else ``~/.cache/pyscale/wheelhouse``. Every use,
cached or fresh, is verified again: one wheel per requirement, its SHA-256 among the lock's
hashes, its tags installable on the target.

``PYSCALE_WHEELHOUSE_DIR`` replaces the download with a wheelhouse made elsewhere:
``<dir>/<architecture>/requirements.txt`` and its wheels, verified the same way — for an
air-gapped build, and for the test suite, whose ~40 program runs use a small fixture and
never touch the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from packaging import tags
from packaging.markers import Marker
from packaging.tags import Tag
from packaging.utils import canonicalize_name, parse_wheel_filename

# Amazon Linux 2023: python3.12 is the interpreter the boot script installs (infra/boot
# PYTHON); its glibc is 2.34. The patch level only matters to a marker on
# python_full_version within 3.12, which the lock has none of.
PYTHON_VERSION: Final = "3.12"
PYTHON_FULL_VERSION: Final = "3.12.0"
GLIBC: Final = (2, 34)
# EC2 architecture name -> the platform machine (`uname -m`) its wheels are built for.
MACHINES: Final = {"arm64": "aarch64", "x86_64": "x86_64"}
CACHE_ENV: Final = "PYSCALE_WHEEL_CACHE"
PREBUILT_ENV: Final = "PYSCALE_WHEELHOUSE_DIR"
REQUIREMENTS_FILE: Final = "requirements.txt"
# One requirement of `uv export`: "name==version ; marker \" then its "--hash=..." lines.
_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9._-]+)(?P<extras>\[[^\]]*\])?==(?P<version>[^ ;\\]+)"
    r"\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


class WheelhouseError(Exception):
    """The wheelhouse cannot be built or is not what the requirements pin (names the file)."""


@dataclass(frozen=True)
class Requirement:
    name: str
    version: str
    hashes: frozenset[str]
    marker: str | None = None

    def line(self) -> str:
        hashes = "".join(f" \\\n    --hash=sha256:{h}" for h in sorted(self.hashes))
        return f"{self.name}=={self.version}{hashes}"


def parse_requirements(text: str) -> list[Requirement]:
    """``name==version [; marker]`` with their ``--hash`` lines (uv export's format)."""
    found: list[Requirement] = []
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _REQUIREMENT.match(line)
        if match:
            if current:
                found.append(Requirement(**current))
            current = {
                "name": str(canonicalize_name(match["name"])),
                "version": match["version"],
                "hashes": frozenset(),
                "marker": match["marker"],
            }
        elif line.startswith("--hash=") and current is not None:
            current["hashes"] = current["hashes"] | set(_HASH.findall(line))
        else:
            raise WheelhouseError(f"requirements: cannot read line {raw.strip()!r}")
    if current:
        found.append(Requirement(**current))
    unhashed = [r.name for r in found if not r.hashes]
    if unhashed:
        raise WheelhouseError(f"requirements without hashes: {', '.join(unhashed)}")
    return found


def target_environment(python_full_version: str, machine: str) -> dict[str, str]:
    """PEP 508 marker values of Linux CPython ``python_full_version`` on ``machine``."""
    return {
        "python_version": ".".join(python_full_version.split(".")[:2]),
        "python_full_version": python_full_version,
        "platform_machine": machine,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def requirements_for_target(requirements: str, python_full_version: str, machine: str) -> str:
    """The requirements that apply on the target, markers removed, hashes kept, one
    canonical layout (sorted by name, hashes sorted) whatever tool wrote the input."""
    environment = target_environment(python_full_version, machine)
    kept = [
        r
        for r in parse_requirements(requirements)
        if r.marker is None or Marker(r.marker).evaluate(environment)
    ]
    return "".join(f"{r.line()}\n" for r in sorted(kept, key=lambda r: r.name))


def manylinux_platforms(machine: str, glibc: tuple[int, int] = GLIBC) -> list[str]:
    """pip ``--platform`` values for a glibc, best first. pip matches each value exactly
    (it widens only ``manylinux2014``/``2010``), so every glibc from the target's down to
    2.17 is listed, then the legacy alias."""
    major, minor = glibc
    return [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)] + [
        f"manylinux2014_{machine}"
    ]


def download_wheels(
    requirements: str,
    directory: Path,
    python_full_version: str,
    machine: str,
    platforms: list[str] | None = None,
    index_url: str | None = None,
) -> None:
    """Download the hash-checked wheels for one target into ``directory`` (PyPI via pip,
    or ``index_url``)."""
    directory.mkdir(parents=True, exist_ok=True)
    digits = "".join(python_full_version.split(".")[:2])
    platforms = platforms if platforms is not None else manylinux_platforms(machine)
    with tempfile.TemporaryDirectory() as scratch:
        target_requirements = Path(scratch) / REQUIREMENTS_FILE
        target_requirements.write_text(
            requirements_for_target(requirements, python_full_version, machine)
        )
        command = [
            sys.executable,
            "-m",
            "pip",
            # --isolated: this machine's pip configuration (extra indexes, constraints) must
            # not change which files are fetched; only the lock file decides.
            "--isolated",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-cache-dir",
            "--require-hashes",
            "--only-binary=:all:",
            "--no-deps",
            f"--python-version={python_full_version}",
            "--implementation=cp",
            f"--abi=cp{digits}",
            *(f"--platform={platform}" for platform in platforms),
            *([f"--index-url={index_url}"] if index_url else []),
            f"--requirement={target_requirements}",
            f"--dest={directory}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["(no message)"]
        raise WheelhouseError(f"pip download failed: {lines[-1]}")


# ---------------------------------------------------------------------------------------
# The release's wheelhouse: built (cached) or prebuilt, always verified
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Wheelhouse:
    architecture: str
    requirements: str
    """What the instance installs: requirements_for_target's text."""
    wheels: Mapping[str, Path]
    """File name -> wheel file, one per requirement."""

    @property
    def size_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.wheels.values())


def supported_tags(machine: str) -> frozenset[Tag]:
    """Every wheel tag CPython PYTHON_VERSION on ``machine`` accepts (packaging's own rules:
    cp312, abi3 down to cp32, py3 and ``none-any``)."""
    version = tuple(int(part) for part in PYTHON_VERSION.split("."))
    platforms = manylinux_platforms(machine)
    return frozenset(
        [
            *tags.cpython_tags(python_version=version, platforms=platforms),
            *tags.compatible_tags(python_version=version, platforms=platforms),
        ]
    )


def verify(directory: Path, requirements: str, architecture: str) -> dict[str, Path]:
    """The wheels in ``directory``, checked against ``requirements`` (one per requirement,
    hash among the pinned ones, installable on the target); WheelhouseError otherwise."""
    machine = MACHINES[architecture]
    accepted = supported_tags(machine)
    pinned = {r.name: r for r in parse_requirements(requirements)}
    wheels = {path.name: path for path in sorted(directory.glob("*.whl"))}
    by_name: dict[str, str] = {}
    for filename, path in wheels.items():
        name, version, _, wheel_tags = parse_wheel_filename(filename)
        requirement = pinned.get(str(name))
        if requirement is None or str(version) != requirement.version:
            raise WheelhouseError(f"wheelhouse: {filename} is not pinned by the requirements")
        if hashlib.sha256(path.read_bytes()).hexdigest() not in requirement.hashes:
            raise WheelhouseError(f"wheelhouse: {filename} does not match its pinned hashes")
        if not wheel_tags & accepted:
            raise WheelhouseError(
                f"wheelhouse: {filename} does not install on CPython {PYTHON_VERSION} "
                f"{machine} (glibc {GLIBC[0]}.{GLIBC[1]})"
            )
        if str(name) in by_name:
            raise WheelhouseError(f"wheelhouse: two wheels for {name}: {by_name[str(name)]}")
        by_name[str(name)] = filename
    missing = sorted(set(pinned) - set(by_name))
    if missing:
        raise WheelhouseError(f"wheelhouse: no wheel for {', '.join(missing)}")
    return wheels


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pyscale" / "wheelhouse"


def cache_key(target_requirements: str, machine: str) -> str:
    decided_by = "\n".join(
        [PYTHON_FULL_VERSION, *manylinux_platforms(machine), target_requirements]
    )
    return hashlib.sha256(decided_by.encode()).hexdigest()


def _prebuilt(architecture: str) -> Wheelhouse | None:
    root = os.environ.get(PREBUILT_ENV)
    if not root:
        return None
    directory = Path(root) / architecture
    requirements_file = directory / REQUIREMENTS_FILE
    if not requirements_file.is_file():
        raise WheelhouseError(f"{PREBUILT_ENV}: no {architecture}/{REQUIREMENTS_FILE} in {root}")
    text = requirements_file.read_text()
    return Wheelhouse(architecture, text, verify(directory, text, architecture))


def build_wheelhouse(
    requirements: str, architecture: str, *, index_url: str | None = None
) -> Wheelhouse:
    """The verified wheelhouse for ``architecture`` ('arm64' or 'x86_64')."""
    if architecture not in MACHINES:
        raise WheelhouseError(
            f"architecture must be one of {', '.join(MACHINES)}, got {architecture!r}"
        )
    prebuilt = _prebuilt(architecture)
    if prebuilt is not None:
        return prebuilt
    machine = MACHINES[architecture]
    target = requirements_for_target(requirements, PYTHON_FULL_VERSION, machine)
    directory = cache_dir() / cache_key(target, machine)
    if not directory.is_dir():
        directory.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            download_wheels(target, partial, PYTHON_FULL_VERSION, machine, index_url=index_url)
            verify(partial, target, architecture)
            try:
                partial.rename(directory)  # atomic; a concurrent run may have won already
            except OSError:
                if not directory.is_dir():
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return Wheelhouse(architecture, target, verify(directory, target, architecture))
