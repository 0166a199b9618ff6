"""gunicorn started for real with app/gunicorn.conf.py on a free loopback port.

    with running_gunicorn(tmp_path, {"REDIS_URL": server.url, "WEB_CONCURRENCY": "2"}) as app:
        requests.get(app.url + "/healthz")

The environment is the only configuration, exactly as on EC2 and in the local topology.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from app.contract import HEALTH_PATH, Env
from tests.support.servers import LOOPBACK, free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = REPO_ROOT / "app" / "gunicorn.conf.py"
GUNICORN = Path(sys.executable).with_name("gunicorn")


@dataclass
class GunicornProcess:
    process: subprocess.Popen
    port: int
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM (graceful drain) and wait; SIGKILL if it outlives `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode


def gunicorn_command() -> list[str]:
    return [str(GUNICORN), "--config", str(GUNICORN_CONF), "app.wsgi:app"]


def start_gunicorn(
    directory: Path,
    env: Mapping[str, str] | None = None,
    wait: bool = True,
    wrapper: Sequence[str] = (),
) -> GunicornProcess:
    """Start gunicorn with the project's config; wait until HEALTH_PATH answers if `wait`.
    `wrapper` runs it (e.g. a sandbox's command prefix). It listens on loopback only (the
    config binds every interface, for EC2; the command line wins)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = {
        **os.environ,
        Env.PORT: str(port),
        Env.WEB_CONCURRENCY: "1",
        Env.PROMETHEUS_MULTIPROC_DIR: str(directory / "metrics"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log_file = directory / f"gunicorn-{port}.log"
    with log_file.open("wb") as log:
        command = gunicorn_command()
        process = subprocess.Popen(
            [*wrapper, *command[:-1], "--bind", f"{LOOPBACK}:{port}", command[-1]],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=log,
        )
    running = GunicornProcess(process, port, log_file)
    if not wait:
        return running

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{running.output()}")
        try:
            return requests.get(running.url + HEALTH_PATH, timeout=1).status_code == 200
        except requests.RequestException:  # not listening yet, or still booting
            return False

    try:
        wait_until(healthy, 20, f"gunicorn on port {port} to answer {HEALTH_PATH}")
    except BaseException:
        running.stop()
        raise
    return running


@contextlib.contextmanager
def running_gunicorn(
    directory: Path, env: Mapping[str, str] | None = None
) -> Iterator[GunicornProcess]:
    running = start_gunicorn(directory, env)
    try:
        yield running
    finally:
        running.stop()
