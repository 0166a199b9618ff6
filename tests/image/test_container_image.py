"""The app's container image (container/Dockerfile), built and run here with podman.

No registry is reachable from these machines, so the base image is made from Debian
packages (mmdebstrap: minbase + python3) and passed as the BASE_IMAGE build argument; the
lock file's wheels are downloaded on the host (PyPI) and installed offline, hash-checked.
The container runs as Kubernetes runs it (read-only root, /tmp as a tmpfs, every capability
dropped, no privilege escalation) and must serve the health path and a report cached in a
real redis-server on loopback.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app.contract import DEFAULT_PORT, HEALTH_PATH, READY_PATH, Env
from infra.wheelhouse import WheelhouseError
from pyscale.image import DOCKERFILE, prepare_context
from tests.support.servers import LOOPBACK, free_port, wait_until
from tests.support.wheels import FixtureWheel, SimpleIndex, make_wheel, sha256

PODMAN = ["podman", "--runtime", "runc"]
# podman here needs explicit limits (the defaults come from a host where they can't be set).
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
DEBIAN_SUITE = "bookworm"
BUILD_SECONDS = 600


def podman(*args: str, timeout: float = BUILD_SECONDS) -> str:
    result = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"podman {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}"
    return result.stdout.strip()


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    base_python: str


@pytest.fixture(scope="module")
def debian_base(tmp_path_factory) -> Iterator[str]:
    """A base image from Debian packages: minbase + python3 (+ venv, which carries pip)."""
    tarball = tmp_path_factory.mktemp("base") / "rootfs.tar"
    subprocess.run(
        [
            "mmdebstrap", "--quiet", "--variant=minbase", "--include=python3,python3-venv",
            "--format=tar", DEBIAN_SUITE, str(tarball),
        ],
        check=True, timeout=BUILD_SECONDS, capture_output=True,
    )  # fmt: skip
    tag = f"localhost/pyscale-test-base:{uuid.uuid4().hex[:12]}"
    podman("import", str(tarball), tag)
    tarball.unlink()
    yield tag
    podman("rmi", "--force", tag)


@pytest.fixture(scope="module")
def app_image(debian_base, tmp_path_factory) -> Iterator[BuiltImage]:
    python_version = podman(
        "run", "--rm", *ULIMITS, debian_base, "python3", "-c",
        "import platform; print(platform.python_version(), platform.machine())",
    )  # fmt: skip
    version, machine = python_version.split()
    context = prepare_context(
        tmp_path_factory.mktemp("image") / "context", wheels_for=(version, machine)
    )
    tag = f"localhost/pyscale-app-test:{uuid.uuid4().hex[:12]}"
    podman(
        "build", *ULIMITS, "--network", "none", "--quiet",
        "--build-arg", f"BASE_IMAGE={debian_base}", "--build-arg", "PIP_NO_INDEX=1",
        "--tag", tag, str(context),
    )  # fmt: skip
    yield BuiltImage(tag=tag, base_python=version)
    podman("rmi", "--force", tag)


@dataclass
class RunningContainer:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def logs(self) -> str:
        return subprocess.run(
            [*PODMAN, "logs", self.name], capture_output=True, text=True, check=False
        ).stderr


@pytest.fixture
def running_app(app_image, redis_server) -> Iterator[RunningContainer]:
    port = free_port()
    name = f"pyscale-test-{uuid.uuid4().hex[:12]}"
    podman(
        "run", "--detach", "--name", name, *ULIMITS,
        # The host's network namespace, so the container reaches redis-server on loopback;
        # gunicorn is told to bind loopback only (GUNICORN_CMD_ARGS overrides the config's bind).
        "--network", "host",
        "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--env", f"{Env.REDIS_URL}={redis_server.url}",
        "--env", f"{Env.PORT}={port}",
        "--env", f"GUNICORN_CMD_ARGS=--bind={LOOPBACK}:{port}",
        "--env", f"{Env.WEB_CONCURRENCY}=2",
        app_image.tag,
    )  # fmt: skip
    container = RunningContainer(name=name, port=port)

    def healthy() -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", name)
        if state != "true":
            raise AssertionError(f"the container exited:\n{container.logs()[-3000:]}")
        try:
            return requests.get(container.url + HEALTH_PATH, timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_until(healthy, 60, f"{HEALTH_PATH} in container {name}")
        yield container
    finally:
        subprocess.run(
            [*PODMAN, "rm", "--force", "--time", "5", name], capture_output=True, check=False
        )


@pytest.mark.slow
@pytest.mark.timeout(BUILD_SECONDS * 2)
def test_the_image_serves_health_and_a_report_cached_in_redis(running_app, redis_server):
    assert requests.get(running_app.url + HEALTH_PATH, timeout=5).status_code == 200
    assert requests.get(running_app.url + READY_PATH, timeout=5).status_code == 200

    first = requests.get(running_app.url + "/api/report/12", timeout=10)
    assert first.status_code == 200
    assert first.headers["X-Cache"] == "miss"
    # The report went to the real Redis, under the app's key scheme.
    keys = redis_server.client().keys("pyscale:*:report:*:12")
    assert len(keys) == 1, keys

    second = requests.get(running_app.url + "/api/report/12", timeout=10)
    assert second.headers["X-Cache"] == "hit"
    assert second.content == first.content


@pytest.mark.slow
@pytest.mark.timeout(BUILD_SECONDS * 2)
def test_sigterm_drains_and_the_container_exits_cleanly(running_app):
    podman("stop", "--time", "40", running_app.name, timeout=60)
    exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", running_app.name)
    assert exit_code == "0", running_app.logs()[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(BUILD_SECONDS * 2)
def test_the_image_runs_as_a_numeric_non_root_user_without_build_leftovers(app_image):
    config = json.loads(podman("image", "inspect", app_image.tag))[0]["Config"]
    assert config["User"] == "10001:10001"
    uid, build_dir = podman(
        "run", "--rm", *ULIMITS, "--network", "none", app_image.tag, "sh", "-c",
        "id -u; test -e /build && echo present || echo absent",
    ).splitlines()  # fmt: skip
    assert uid == "10001"
    assert build_dir == "absent"  # the wheels and requirements stayed in the build stage


# -- the Dockerfile's text: what a reviewer would otherwise check by eye --------------------
def test_the_base_is_a_build_argument_pinned_by_digest():
    text = DOCKERFILE.read_text()
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert default, "BASE_IMAGE must be a build argument with a default"
    assert re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", default[1])
    # every stage starts from it, multi-stage
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]


def test_the_image_serves_with_app_gunicorn_conf_on_the_contract_port():
    text = DOCKERFILE.read_text()
    assert f"EXPOSE {DEFAULT_PORT}" in text
    assert 'CMD ["gunicorn", "--config", "app/gunicorn.conf.py", "app.wsgi:app"]' in text
    assert "--require-hashes" in text
    assert "--only-binary=:all:" in text


# -- the context's wheels: the shared wheelhouse code, for the image's interpreter -----------
# Real wheels from a package index on loopback; the lock's text as uv exports it (markers,
# SHA-256 hashes of the served files).
NATIVE_CP311_X86 = FixtureWheel("native", "1.0", "cp311-cp311-manylinux_2_17_x86_64")
NATIVE_CP312_ARM = FixtureWheel("native", "1.0", "cp312-cp312-manylinux_2_36_aarch64")
BACKPORT = FixtureWheel("backport", "2.0", "py3-none-any")


@pytest.fixture
def index(tmp_path) -> Iterator[tuple[SimpleIndex, str]]:
    files = tmp_path / "index"
    native = [make_wheel(files, wheel) for wheel in (NATIVE_CP311_X86, NATIVE_CP312_ARM)]
    backport = make_wheel(files, BACKPORT)
    locked = (
        "backport==2.0 ; python_full_version < '3.11.3' \\\n"
        f"    --hash=sha256:{sha256(backport)}\n"
        "native==1.0 \\\n" + " \\\n".join(f"    --hash=sha256:{sha256(p)}" for p in native) + "\n"
        # Not served: asking the index for it would fail the download.
        "pywin32==311 ; sys_platform == 'win32' \\\n"
        f"    --hash=sha256:{'d' * 64}\n"
    )
    server = SimpleIndex(files)
    yield server, locked
    server.close()


def wheels_in(context: Path) -> list[str]:
    return sorted(path.name for path in (context / "wheels").iterdir())


def test_debians_python_3_11_2_gets_its_cp311_wheel_and_the_backport_its_marker_selects(
    index, tmp_path
):
    server, locked = index
    context = prepare_context(
        tmp_path / "context",
        wheels_for=("3.11.2", "x86_64"),
        requirements=locked,
        index_url=server.url,
    )
    assert wheels_in(context) == [BACKPORT.filename, NATIVE_CP311_X86.filename]
    # pip inside the build installs from the full lock text (its own markers)
    assert (context / "requirements.txt").read_text() == locked


def test_the_slim_images_python_3_12_on_arm64_gets_the_bookworm_glibc_wheel_only(index, tmp_path):
    server, locked = index
    context = prepare_context(
        tmp_path / "context",
        wheels_for=("3.12.11", "aarch64"),
        requirements=locked,
        index_url=server.url,
    )
    assert wheels_in(context) == [NATIVE_CP312_ARM.filename]


def test_requirements_without_hashes_are_refused_before_any_download(index, tmp_path):
    server, _ = index
    with pytest.raises(WheelhouseError, match="requirements without hashes: six"):
        prepare_context(
            tmp_path / "context",
            wheels_for=("3.12.11", "x86_64"),
            requirements="six==1.17.0\n",
            index_url=server.url,
        )
    assert server.requests == []


def test_the_context_is_the_release_plus_the_dockerfile(tmp_path):
    pinned = f"six==1.17.0 \\\n    --hash=sha256:{'a' * 64}\n"
    context = prepare_context(tmp_path / "context", requirements=pinned)
    assert (context / "Dockerfile").read_text() == DOCKERFILE.read_text()
    assert (context / "requirements.txt").read_text() == pinned
    assert (context / "app" / "gunicorn.conf.py").is_file()
    assert list((context / "wheels").iterdir()) == []
    assert not any(Path(context).rglob("__pycache__"))
