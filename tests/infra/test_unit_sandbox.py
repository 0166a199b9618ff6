"""The systemd units' sandbox leaves the app and its proxy everything they need.

No systemd manager runs here, so tests/support/sandbox.py puts the processes under the
restrictions each rendered unit asks for, with the kernel mechanisms systemd itself uses
(seccomp system call and address-family filters, no-write-execute memory, no capabilities,
no new privileges, a read-only file system but for the unit's writable places). Then the
real app serves through the real proxy: TLS to a Redis that wants AUTH, the token read over
HTTPS from (a stand-in for) Secrets Manager, metrics written to the runtime directory.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from app.contract import HEALTH_PATH, READY_PATH, Env
from infra import boot
from infra.boot import proxy
from tests.infra.test_boot_script import make_spec
from tests.support.gunicorn import start_gunicorn
from tests.support.sandbox import SYSTEMD_ANALYZE, Sandbox
from tests.support.secrets_manager import fake_secrets_manager
from tests.support.servers import LOOPBACK, free_port, wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pyscale-dev-auth-AbCdEf"
APP_HOST = "app.example.com"
CLIENT_HOST = {"Host": APP_HOST}
FOREIGN_HOST = {"Host": "evil.example"}
ALB_CHECK_HOST = {"Host": "10.0.1.23:8000"}


def sandbox_works_here() -> bool:
    """Root with the right to make a mount namespace and load seccomp filters (a container
    without CAP_SYS_ADMIN has neither), systemd-analyze and HAProxy."""
    if os.geteuid() != 0 or SYSTEMD_ANALYZE is None or not Path(HAPROXY).exists():
        return False
    probe = Sandbox.from_unit(boot.proxy_unit(), writable=[])
    done = subprocess.run(
        [*probe.command(), "true"], cwd=REPO_ROOT, capture_output=True, check=False
    )
    return done.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sandbox_works_here(),
        reason="needs root that may make mount namespaces, systemd-analyze and haproxy",
    ),
]

PROBE = r"""
import ctypes, errno, mmap, socket, sys
def outcome(action):
    try:
        action()
        return "allowed"
    except OSError as error:
        return errno.errorcode[error.errno]
libc = ctypes.CDLL(None, use_errno=True)
def hostname():
    if libc.sethostname(b"x", 1) != 0:
        raise OSError(ctypes.get_errno(), "sethostname")
print({
    "write outside": outcome(lambda: open(sys.argv[1], "w")),
    "write runtime directory": outcome(lambda: open(sys.argv[2], "w")),
    "netlink socket": outcome(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)),
    "inet6 socket": outcome(lambda: socket.socket(socket.AF_INET6).close()),
    "writable code": outcome(lambda: mmap.mmap(-1, 4096, prot=7)),
    "set hostname": outcome(hostname),
    "capabilities": [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0],
})
"""


def app_sandbox(tmp_path: Path) -> tuple[Sandbox, Path, Path]:
    runtime, private_tmp = tmp_path / "run-pyscale", tmp_path / "private-tmp"
    runtime.mkdir()
    private_tmp.mkdir()
    sandbox = Sandbox.from_unit(boot.systemd_unit(make_spec()), writable=[runtime, private_tmp])
    return sandbox, runtime, private_tmp


def test_the_sandbox_refuses_what_the_app_unit_forbids(tmp_path):
    # Without this, the app passing below could mean the sandbox does nothing.
    sandbox, runtime, _ = app_sandbox(tmp_path)

    result = subprocess.run(
        [*sandbox.command(), sys.executable, "-c", PROBE, str(tmp_path / "x"), str(runtime / "x")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert ast.literal_eval(result.stdout) == {
        "write outside": "EROFS",
        "write runtime directory": "allowed",
        "netlink socket": "EAFNOSUPPORT",
        "inet6 socket": "allowed",
        "writable code": "EACCES",
        "set hostname": "EPERM",
        "capabilities": "0000000000000000",
    }


def test_app_and_proxy_serve_everything_they_need_inside_their_units_sandboxes(
    tmp_path, tls_redis_server
):
    sandbox, runtime, private_tmp = app_sandbox(tmp_path)
    token = tls_redis_server.password
    tls = tls_redis_server.tls
    with fake_secrets_manager({SECRET_ARN: json.dumps({"auth_token": token})}, tls=tls) as aws:
        env = {
            **aws.boto_env(),
            "REDIS_URL": tls_redis_server.url.replace(f":{token}@", ""),
            "REDIS_AUTH_SECRET_ARN": SECRET_ARN,
            "REDIS_TLS_CA_FILE": str(tls.ca_file),
            "WEB_CONCURRENCY": "2",
            "NEAR_CACHE_MAX_BYTES": "0",  # every hit from Redis: TLS on every request
            "PROMETHEUS_MULTIPROC_DIR": str(runtime / "metrics"),
            "TMPDIR": str(private_tmp),
            "TRUSTED_HOSTS": boot.app_environment(make_spec(trusted_hosts=(APP_HOST,)))[
                Env.TRUSTED_HOSTS
            ],
        }
        # GIVEN gunicorn behind the proxy, each inside its own unit's sandbox
        app = start_gunicorn(tmp_path / "app", env, wrapper=sandbox.command())
        front = start_proxy(tmp_path, gunicorn_port=app.port)
        try:
            # WHEN requests come through the proxy, as from the load balancer
            base = f"http://{LOOPBACK}:{front.port}"
            # The ALB's check carries the target's address as Host, a name no stack trusts
            health = requests.get(base + HEALTH_PATH, headers=ALB_CHECK_HOST, timeout=5)
            ready = requests.get(base + READY_PATH, headers=CLIENT_HOST, timeout=5).json()
            miss = requests.get(base + "/api/report/321", headers=CLIENT_HOST, timeout=10)
            hit = requests.get(base + "/api/report/321", headers=CLIENT_HOST, timeout=10)
            foreign = requests.get(base + "/api/report/321", headers=FOREIGN_HOST, timeout=10)
            metrics_outside = requests.get(base + "/metrics", timeout=5).status_code
            metrics = requests.get(app.url + "/metrics", timeout=5).text
        finally:
            front.stop()
            stopped = app.stop()

    # THEN everything answers: the cache over TLS with the token read over HTTPS, the
    # metrics from the files in the runtime directory, and gunicorn stops cleanly
    assert health.status_code == 200
    assert foreign.status_code == 400
    assert ready["redis"]["status"] == "ok"
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("miss", "hit")
    assert hit.headers["X-Cache-Layer"] == "redis"
    assert aws.requested == [SECRET_ARN]
    assert metrics_outside == 404
    assert 'pyscale_cache_hits_total{layer="redis"} 1.0' in metrics
    assert list((runtime / "metrics").glob("*.db"))
    assert stopped == 0, app.output()
    assert "Operation not permitted" not in app.output()


class Proxy:
    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    def stop(self) -> None:
        self.process.send_signal(signal.SIGUSR1)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_proxy(tmp_path: Path, gunicorn_port: int) -> Proxy:
    """The instance's HAProxy, its configuration as the boot script writes it, in its unit's
    sandbox, on loopback."""
    port = free_port()
    config = tmp_path / "proxy.cfg"
    config.write_text(
        proxy.render_instance_config(
            proxy.InstanceProxy(
                listen_port=port,
                trusted_forwarders=LOOPBACK,
                gunicorn_port=gunicorn_port,
                listen_address=LOOPBACK,
            )
        )
    )
    sandbox = Sandbox.from_unit(boot.proxy_unit(), writable=[])
    log = tmp_path / "proxy.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*sandbox.command(), HAPROXY, "-db", "-f", str(config)],
            env={**os.environ, proxy.ADMITTED_REQUESTS_VARIABLE: "3"},
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"haproxy exited {process.returncode}:\n{log.read_text()}")
        try:
            return requests.get(f"http://{LOOPBACK}:{port}{HEALTH_PATH}", timeout=1).ok
        except requests.RequestException:
            return False

    wait_until(answers, 20, "the sandboxed proxy to answer the health path")
    return Proxy(process, port, log)
