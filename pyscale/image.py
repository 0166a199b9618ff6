"""The container image's build context: the app release, unpacked, next to container/Dockerfile.

The image holds exactly what the EC2 fleet installs (infra/release.py builds it): ``app/``
and the user's app directory, and ``requirements.txt`` — the uv.lock closure pinned with
SHA-256 hashes — so both platforms run the same bits. The context is

    <dir>/Dockerfile         container/Dockerfile
    <dir>/app/ ...           the release archive, unpacked
    <dir>/requirements.txt
    <dir>/wheels/            empty (pip fetches from PyPI inside the build), or the wheels
                             for one target downloaded here (an offline build: PIP_NO_INDEX=1)

    python -m pyscale.image build/image [--wheels PYTHON_VERSION MACHINE]

pip downloads the wheels (``--require-hashes``, wheels only): pip, not uv, because only pip
downloads for another interpreter and platform. pip evaluates environment markers against
the interpreter running it, not the target, so the markers are evaluated here for the
target (a ``python_full_version < '3.11.3'`` pin matters on Debian's 3.11.2).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Final

from packaging.markers import Marker

from infra.release import REQUIREMENTS_NAME, ReleaseError, build_artifact, export_requirements

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DOCKERFILE: Final = REPO_ROOT / "container" / "Dockerfile"
WHEELS_DIR: Final = "wheels"
# manylinux tags the lock's compiled wheels (hiredis, markupsafe) carry; glibc 2.28 covers
# Debian bookworm (2.36) and AL2023 (2.34).
_MANYLINUX_TAGS: Final = ("manylinux_2_28", "manylinux2014")
# One requirement of `uv export`: "name==version ; marker \" then its "--hash=..." lines.
_REQUIREMENT = re.compile(
    r"^(?P<pin>[A-Za-z0-9._\[\]-]+==[^ ;\\]+)\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)


class ImageContextError(Exception):
    """The build context cannot be made (the message says what is missing)."""


def requirements_for_target(requirements: str, python_version: str, machine: str) -> str:
    """The requirements that apply to a Linux CPython `python_version` on `machine`,
    markers removed, hashes kept."""
    environment = {
        "python_version": ".".join(python_version.split(".")[:2]),
        "python_full_version": python_version,
        "platform_machine": machine,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    kept: list[str] = []
    keeping = False
    for line in requirements.splitlines():
        match = _REQUIREMENT.match(line)
        if match:
            marker = match["marker"]
            keeping = marker is None or Marker(marker).evaluate(environment)
            if keeping:
                kept.append(f"{match['pin']} \\")
        elif line.startswith(" ") and keeping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def download_wheels(requirements: str, directory: Path, python_version: str, machine: str) -> None:
    """Download the hash-checked wheels for one target into `directory` (PyPI, via pip)."""
    directory.mkdir(parents=True, exist_ok=True)
    target_requirements = directory / f"requirements-{python_version}-{machine}.txt"
    target_requirements.write_text(requirements_for_target(requirements, python_version, machine))
    digits = "".join(python_version.split(".")[:2])
    platforms = [arg for tag in _MANYLINUX_TAGS for arg in ("--platform", f"{tag}_{machine}")]
    command = [
        sys.executable,
        "-m",
        "pip",
        # --isolated: this machine's pip configuration (extra indexes, constraints) must not
        # change which files are fetched; only the lock file decides.
        "--isolated",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--require-hashes",
        "--only-binary=:all:",
        "--no-deps",
        f"--python-version={python_version}",
        "--implementation=cp",
        f"--abi=cp{digits}",
        *platforms,
        f"--requirement={target_requirements}",
        f"--dest={directory}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    target_requirements.unlink()
    if result.returncode != 0:
        raise ImageContextError(f"pip download failed: {result.stderr.strip()}")


def prepare_context(
    directory: Path,
    repo_root: Path = REPO_ROOT,
    wheels_for: tuple[str, str] | None = None,
    requirements: str | None = None,
) -> Path:
    """Write the build context into `directory` (emptied first) and return it.

    wheels_for: (python_version, machine) to download wheels for an offline build.
    requirements: the pinned requirements text; None exports it from uv.lock.
    """
    text = export_requirements(repo_root) if requirements is None else requirements
    artifact = build_artifact(repo_root, requirements=text)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    with tarfile.open(artifact.path) as archive:
        archive.extractall(directory, filter="data")
    shutil.copyfile(DOCKERFILE, directory / "Dockerfile")
    (directory / WHEELS_DIR).mkdir()
    if wheels_for is not None:
        download_wheels(text, directory / WHEELS_DIR, *wheels_for)
    if not (directory / REQUIREMENTS_NAME).is_file():
        raise ImageContextError(f"the release has no {REQUIREMENTS_NAME}")
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument(
        "--wheels",
        nargs=2,
        metavar=("PYTHON_VERSION", "MACHINE"),
        help="download the wheels for this target (e.g. 3.12.11 x86_64) for an offline build",
    )
    options = parser.parse_args(argv)
    try:
        prepare_context(
            options.directory, wheels_for=tuple(options.wheels) if options.wheels else None
        )
    except (ImageContextError, ReleaseError) as error:
        print(f"pyscale image: {error}", file=sys.stderr)
        return 2
    print(options.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
