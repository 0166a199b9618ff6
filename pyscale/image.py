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

The wheels come from infra/wheelhouse.py, the code that builds the EC2 release's
wheelhouse: one parser of uv export's format, one marker evaluation for the target (not the
machine running pip: a ``python_full_version < '3.11.3'`` pin matters on Debian's 3.11.2),
one ``pip download --require-hashes --only-binary=:all:`` command. Only the target differs:
the image's interpreter (its version and CPU) and Debian bookworm's glibc.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Final

from infra.release import REQUIREMENTS_NAME, ReleaseError, build_artifact, export_requirements
from infra.wheelhouse import WheelhouseError, download_wheels, manylinux_platforms

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DOCKERFILE: Final = REPO_ROOT / "container" / "Dockerfile"
WHEELS_DIR: Final = "wheels"
# The base image's C library (container/Dockerfile: python:3.12-slim-bookworm, Debian
# bookworm's glibc 2.36; the tests' mmdebstrap base is bookworm too): pip is offered every
# manylinux tag from it down to manylinux2014.
IMAGE_GLIBC: Final = (2, 36)


class ImageContextError(Exception):
    """The build context cannot be made (the message says what is missing)."""


def prepare_context(
    directory: Path,
    repo_root: Path = REPO_ROOT,
    wheels_for: tuple[str, str] | None = None,
    requirements: str | None = None,
    index_url: str | None = None,
) -> Path:
    """Write the build context into `directory` (emptied first) and return it.

    wheels_for: (python_full_version, machine), e.g. ("3.12.11", "aarch64"): download the
    wheels for that interpreter into wheels/ for an offline build.
    requirements: the pinned requirements text; None exports it from uv.lock.
    index_url: the package index to download from (None: PyPI).
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
        python_full_version, machine = wheels_for
        download_wheels(
            text,
            directory / WHEELS_DIR,
            python_full_version,
            machine,
            platforms=manylinux_platforms(machine, IMAGE_GLIBC),
            index_url=index_url,
        )
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
            options.directory,
            wheels_for=(options.wheels[0], options.wheels[1]) if options.wheels else None,
        )
    except (ImageContextError, ReleaseError, WheelhouseError) as error:
        print(f"pyscale image: {error}", file=sys.stderr)
        return 2
    print(options.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
