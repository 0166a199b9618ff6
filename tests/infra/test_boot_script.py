"""The EC2 boot script: rendered for every stack, checked by shellcheck, and executed for real
in a scratch root against stub commands (dnf, aws, curl, systemctl, python3.12, ...) that
record how they were called — the only fakes are for what exists only on EC2."""

from __future__ import annotations

import base64
import platform
import shutil
import stat
import subprocess
import sys
import textwrap
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from app.contract import GRACEFUL_TIMEOUT_SECONDS, HEALTH_PATH, PORT_BEHIND_PROXY, Env
from app.settings import load_settings
from app.sizing import admitted_requests, workers_for
from infra import boot, wheelhouse
from infra.boot import proxy
from infra.release import build_artifact
from infra.wheelhouse import PREBUILT_ENV
from pyscale.offline import run_stack
from tests.support.wheels import SimpleIndex, installed_wheels, requirements_for

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pyscale-dev-auth-AbCdEf"
INSTANCE_ID = "i-0123456789abcdef0"
GROUP = "pyscale-dev-asg-0a1b2c3"


def lifecycle_result(calls: list[str]) -> list[str]:
    """The results the boot sent with complete-lifecycle-action, in order."""
    return [
        c.split("--lifecycle-action-result ")[1].split()[0]
        for c in calls
        if c.startswith("aws autoscaling complete-lifecycle-action")
    ]


REQUIREMENTS = "flask==3.1.3 \\\n    --hash=sha256:" + "0" * 64 + "\n"


def user_data_of(run) -> str:
    return base64.b64decode(run.one(LAUNCH_TEMPLATE).inputs["userData"]).decode()


def shellcheck(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["shellcheck", "--shell=bash", "--severity=style", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )


# ---------------------------------------------------------------------------------------
# As rendered by the program, per stack
# ---------------------------------------------------------------------------------------
def test_every_stacks_user_data_passes_shellcheck(each_stack_run):
    result = shellcheck(user_data_of(each_stack_run))
    assert result.returncode == 0, result.stdout


def test_user_data_is_under_16_kb_and_holds_no_auth_token(each_stack_run):
    script = user_data_of(each_stack_run)
    tokens = [
        r.outputs["result"]
        for r in each_stack_run.of_type("random:index/randomPassword:RandomPassword")
    ]

    assert len(script.encode()) < boot.USER_DATA_LIMIT_BYTES
    assert tokens, "the stacks generate an AUTH token"
    assert not any(token in script for token in tokens)


def test_user_data_fails_loudly(each_stack_run):
    script = user_data_of(each_stack_run)

    assert script.startswith("#!/bin/bash\n")
    assert "\nset -euo pipefail\n" in script


def test_user_data_reads_an_auth_token_only_by_its_secrets_arn():
    run = run_stack("dev", {"cacheAuth": "auth-token"})
    (secret,) = run.of_type("aws:secretsmanager/secret:Secret")

    assert f"{Env.REDIS_AUTH_SECRET_ARN}={secret.outputs['arn']}" in user_data_of(run)


# ---------------------------------------------------------------------------------------
# Rendering rules
# ---------------------------------------------------------------------------------------
def make_spec(**changes) -> boot.BootSpec:
    spec = boot.BootSpec(
        region="us-east-1",
        architecture="arm64",
        release_bucket="pyscale-dev-release-bucket-1234567",
        release_key="releases/" + "0" * 64 + ".tar",
        release_version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        release_sha256="0" * 64,
        app_version="r-000000000000",
        wsgi_module="app.wsgi:app",
        cache=boot.CacheConnection(
            endpoint="master.pyscale-dev.abc123.use1.cache.amazonaws.com",
            port=6379,
            tls=True,
            cluster=False,
            auth_secret_arn=SECRET_ARN,
        ),
        cache_ttl_seconds=300,
        forwarded_allow_ips="10.0.0.0/16",
        log_group_name="/pyscale/pyscale-dev/app",
        metrics=boot.AppMetrics(
            log_group_name="/pyscale/pyscale-dev/metrics",
            namespace="pyscale/pyscale-dev",
            stack="pyscale-dev",
        ),
    )
    return replace(spec, **changes)


def test_an_unresolved_value_is_refused_naming_it():
    spec = make_spec(cache=replace(make_spec().cache, endpoint="None"))

    with pytest.raises(boot.BootScriptError, match=Env.REDIS_URL):
        boot.render_user_data(spec)


def test_a_value_is_quoted_so_it_cannot_inject_shell():
    script = boot.render_user_data(make_spec(release_key="releases/app.tar; rm -rf /"))

    assert "readonly RELEASE_KEY='releases/app.tar; rm -rf /'" in script
    assert shellcheck(script).returncode == 0


def test_the_unit_runs_gunicorn_with_the_apps_config_and_stops_gracefully():
    unit = boot.systemd_unit(make_spec(wsgi_module="ownapp.wsgi:application"))

    assert (
        "ExecStart=/opt/pyscale/current/venv/bin/gunicorn --config app/gunicorn.conf.py "
        f"--bind 127.0.0.1:{PORT_BEHIND_PROXY} ownapp.wsgi:application"
    ) in unit
    assert "EnvironmentFile=/etc/pyscale/app.env" in unit
    assert f"TimeoutStopSec={GRACEFUL_TIMEOUT_SECONDS + 10}" in unit
    assert "User=pyscale" in unit


def test_without_auth_the_environment_names_no_secret_and_cluster_mode_is_passed_on():
    spec = make_spec(
        cache=boot.CacheConnection(
            "clustercfg.x", 6379, tls=False, cluster=True, auth_secret_arn=None
        ),
        web_concurrency=6,
    )
    env = boot.app_environment(spec)

    assert Env.REDIS_AUTH_SECRET_ARN not in env
    assert env[Env.REDIS_URL] == "redis://clustercfg.x:6379"
    assert env[Env.REDIS_CLUSTER] == "true"
    assert env[Env.WEB_CONCURRENCY] == "6"


# ---------------------------------------------------------------------------------------
# Executed for real against stubs
# ---------------------------------------------------------------------------------------
STUB = """#!/bin/bash
printf '%s\\n' "$(basename "$0") $*" >>"$STUB_LOG"
{body}
"""
STUBS = {
    # dnf "installs" the CloudWatch agent's control program where the RPM puts it.
    "dnf": """
ctl="$PYSCALE_BOOT_ROOT/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
mkdir -p "$(dirname "$ctl")"
printf '#!/bin/bash\\nprintf "%%s\\\\n" "amazon-cloudwatch-agent-ctl $*" >>"$STUB_LOG"\\n' >"$ctl"
chmod +x "$ctl"
""",
    # aws s3api get-object ... OUTFILE: hand over the archive the test built; the group's
    # name for the instance; completing a lifecycle action (none pending: AWS's error).
    "aws": """
case "$1 $2" in
  "s3api get-object") cp "$STUB_ARTIFACT" "${!#}" ;;
  "autoscaling describe-auto-scaling-instances") printf '%s\\n' "$STUB_GROUP" ;;
  "autoscaling complete-lifecycle-action")
    if [[ -n "${STUB_NO_ACTION:-}" ]]; then
      echo "An error occurred (ValidationError) when calling the CompleteLifecycleAction" \\
        "operation: No active Lifecycle Action found with instance ID $STUB_INSTANCE_ID" >&2
      exit 254
    fi ;;
esac
""",
    "curl": """
case "$*" in
  *api/token*) printf 'imds-token' ;;
  *meta-data/instance-id*) printf '%s' "$STUB_INSTANCE_ID" ;;
esac
""",
    "systemctl": "",
    "useradd": "",
    "chown": "",
    "id": "exit 1",
    "uname": 'printf "%s\\n" "$STUB_MACHINE"',
    # python3.12 -m venv DIR: a venv whose pip records its arguments and whose python is
    # this one (the release's own code runs in it: `python -m app.sizing`).
    "python3.12": """
venv="${!#}"
mkdir -p "$venv/bin"
printf '#!/bin/bash\\nprintf "%%s\\\\n" "pip $*" >>"$STUB_LOG"\\n' >"$venv/bin/pip"
chmod +x "$venv/bin/pip"
ln -s "$STUB_PYTHON" "$venv/bin/python"
""",
    # The real HAProxy checks the proxy's configuration, as on the instance.
    "haproxy": 'exec "$STUB_HAPROXY" "$@"',
}


@pytest.fixture
def boot_machine(tmp_path):
    """A scratch root, stub commands on PATH, and a real release archive to fetch."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in STUBS.items():
        path = stubs / name
        path.write_text(STUB.format(body=textwrap.dedent(body)))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    root = tmp_path / "root"
    root.mkdir()
    artifact = build_artifact(REPO_ROOT, out_dir=tmp_path / "build", requirements=REQUIREMENTS)
    log = tmp_path / "calls.log"
    log.touch()
    env = {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "PYSCALE_BOOT_ROOT": str(root),
        "STUB_LOG": str(log),
        "STUB_ARTIFACT": str(artifact.path),
        "STUB_INSTANCE_ID": INSTANCE_ID,
        "STUB_GROUP": GROUP,
        "STUB_MACHINE": "aarch64",
        "STUB_PYTHON": sys.executable,
        "STUB_HAPROXY": shutil.which("haproxy") or "/usr/sbin/haproxy",
        "HOME": str(tmp_path),
    }

    class Machine:
        def __init__(self) -> None:
            self.root, self.artifact, self.env = root, artifact, env

        def spec(self, **changes) -> boot.BootSpec:
            return make_spec(
                release_sha256=artifact.sha256, app_version=artifact.version, **changes
            )

        def run(self, script: str) -> subprocess.CompletedProcess:
            path = tmp_path / "user-data.sh"
            path.write_text(script)
            return subprocess.run(
                ["bash", str(path)],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        def calls(self) -> list[str]:
            return log.read_text().splitlines()

    return Machine()


def test_boot_installs_the_release_and_starts_the_app(boot_machine):
    spec = boot_machine.spec()
    result = boot_machine.run(boot.render_user_data(spec))
    root, calls = boot_machine.root, boot_machine.calls()
    release_dir = root / "opt/pyscale/releases" / spec.app_version
    env_file = (root / "etc/pyscale/app.env").read_text()
    unit = (root / "etc/systemd/system/pyscale.service").read_text()

    assert result.returncode == 0, result.stderr
    assert any(c.startswith("dnf install") and " python3.12 python3.12-pip " in c for c in calls)
    assert (
        f"aws s3api get-object --region us-east-1 --bucket {spec.release_bucket} "
        f"--key {spec.release_key} --version-id {spec.release_version_id}"
    ) in "\n".join(calls)
    assert (release_dir / "app/gunicorn.conf.py").is_file()
    assert (root / "opt/pyscale/current").resolve() == release_dir.resolve()
    pip = next(c for c in calls if c.startswith("pip --isolated install"))
    assert "--require-hashes" in pip
    assert "--only-binary=:all:" in pip
    assert f"--no-index --find-links {release_dir}/wheelhouse" in pip
    assert f"--requirement {release_dir}/requirements.txt" in pip
    assert f"{Env.INSTANCE_ID}={INSTANCE_ID}" in env_file.splitlines()
    assert f"{Env.APP_VERSION}={spec.app_version}" in env_file.splitlines()
    assert unit == boot.systemd_unit(spec) + "\n"
    start = "systemctl enable --now pyscale.service pyscale-proxy.service"
    assert start in calls
    assert calls.index("systemctl daemon-reload") < calls.index(start)
    health = [c for c in calls if c.startswith("curl") and HEALTH_PATH in c]
    assert health
    assert f"127.0.0.1:{spec.app_port}{HEALTH_PATH}" in health[-1]
    assert any(c.startswith("amazon-cloudwatch-agent-ctl -a fetch-config") for c in calls)


def test_boot_writes_no_secret_and_keeps_the_env_file_private(boot_machine):
    result = boot_machine.run(boot.render_user_data(boot_machine.spec()))
    env_file = boot_machine.root / "etc/pyscale/app.env"

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o640
    assert f"{Env.REDIS_AUTH_SECRET_ARN}={SECRET_ARN}" in env_file.read_text()
    assert "password" not in env_file.read_text().lower()


def test_a_tampered_release_stops_the_boot_before_anything_starts(boot_machine):
    tampered = boot_machine.root.parent / "tampered.tar"
    shutil.copy(boot_machine.artifact.path, tampered)
    with tampered.open("ab") as archive:
        archive.write(b"\0" * 512)
    boot_machine.env["STUB_ARTIFACT"] = str(tampered)

    result = boot_machine.run(boot.render_user_data(boot_machine.spec()))

    assert result.returncode != 0
    assert "does not match SHA-256" in result.stderr
    assert not any(c.startswith(("systemctl", "pip")) for c in boot_machine.calls())
    assert lifecycle_result(boot_machine.calls()) == ["ABANDON"]


def test_an_instance_of_the_wrong_architecture_refuses_to_boot(boot_machine):
    boot_machine.env["STUB_MACHINE"] = "x86_64"

    result = boot_machine.run(boot.render_user_data(boot_machine.spec()))

    assert result.returncode != 0
    assert "built for aarch64" in result.stderr
    assert not any(c.startswith("dnf") for c in boot_machine.calls())


def test_a_failing_health_check_fails_the_boot(boot_machine, tmp_path):
    curl = Path(boot_machine.env["PATH"].split(":")[0]) / "curl"
    curl.write_text(curl.read_text().replace("esac", f"  *{HEALTH_PATH}*) exit 7 ;;\nesac"))

    result = boot_machine.run(boot.render_user_data(boot_machine.spec()))

    assert result.returncode != 0
    assert f"did not answer {HEALTH_PATH}" in result.stderr
    assert lifecycle_result(boot_machine.calls()) == ["ABANDON"]


def test_everything_the_boot_writes_lands_under_its_root(boot_machine):
    host_paths = [Path("/etc/pyscale"), Path("/opt/pyscale"), Path("/etc/logrotate.d/pyscale")]
    existed = {path: path.exists() for path in host_paths}

    result = boot_machine.run(boot.render_user_data(boot_machine.spec()))

    assert result.returncode == 0, result.stderr
    assert {path: path.exists() for path in host_paths} == existed
    assert (boot_machine.root / "etc/logrotate.d/pyscale").is_file()
    assert "/var/log/pyscale/*.log {" in (boot_machine.root / "etc/logrotate.d/pyscale").read_text()


def test_boot_puts_the_buffering_proxy_on_the_load_balancers_port_in_front_of_gunicorn(
    boot_machine,
):
    # GIVEN an instance whose gunicorn runs 3 workers (of 4 threads, the app's default)
    spec = boot_machine.spec(web_concurrency=3)

    result = boot_machine.run(boot.render_user_data(spec))
    root, calls = boot_machine.root, boot_machine.calls()
    env = dict(
        line.split("=", 1) for line in (root / "etc/pyscale/app.env").read_text().splitlines()
    )

    assert result.returncode == 0, result.stderr
    assert any(c.startswith("dnf install") and " haproxy " in c for c in calls)
    # THEN gunicorn listens behind the proxy, on loopback, and trusts forwarded headers
    # from the proxy only (the proxy takes them from the load balancer's network only)
    assert env[Env.PORT] == str(PORT_BEHIND_PROXY)
    assert env[Env.FORWARDED_ALLOW_IPS] == "127.0.0.1"
    config = (root / "etc/pyscale/proxy.cfg").read_text()
    # As rendered, less the comment lines user data has no room for (EC2's 16 KB).
    rendered = proxy.render_instance_config(boot.instance_proxy(spec))
    assert config == boot.strip_comment_lines(rendered) + "\n"
    assert f"    bind :{spec.app_port}" in config.splitlines()
    assert f"acl from_load_balancer src {spec.forwarded_allow_ips}" in config
    # ... the proxy admits the app's own count of requests at once, one thread kept free
    assert (root / "etc/pyscale/proxy.env").read_text() == (
        f"{proxy.ADMITTED_REQUESTS_VARIABLE}={admitted_requests(3, 4)}\n"
    )
    # ... real HAProxy accepted the file before anything started, and both units start
    assert calls.index(f"haproxy -c -q -f {root}/etc/pyscale/proxy.cfg") < calls.index(
        "systemctl enable --now pyscale.service pyscale-proxy.service"
    )
    unit = (root / "etc/systemd/system/pyscale-proxy.service").read_text()
    assert unit == boot.proxy_unit() + "\n"
    # ... and the boot's own health check goes through the proxy
    health = [c for c in calls if c.startswith("curl") and HEALTH_PATH in c]
    assert f"127.0.0.1:{spec.app_port}{HEALTH_PATH}" in health[-1]


def test_a_proxy_configuration_haproxy_rejects_stops_the_boot_before_anything_starts(
    boot_machine,
):
    haproxy = Path(boot_machine.env["PATH"].split(":")[0]) / "haproxy"
    haproxy.write_text("#!/bin/bash\necho 'parsing [proxy.cfg:3] : unknown keyword' >&2\nexit 1\n")

    result = boot_machine.run(boot.render_user_data(boot_machine.spec()))

    assert result.returncode != 0
    assert "HAProxy rejects /etc/pyscale/proxy.cfg" in result.stderr
    assert not any(c.startswith("systemctl enable") for c in boot_machine.calls())


def test_trusted_hosts_reach_the_app_with_loopback_for_the_health_checks():
    env = boot.app_environment(make_spec(trusted_hosts=("app.example.com", "pyscale-alb.elb")))

    assert env[Env.TRUSTED_HOSTS] == "app.example.com,pyscale-alb.elb,127.0.0.1,localhost"
    assert Env.TRUSTED_HOSTS not in boot.app_environment(make_spec())


def test_the_load_balancers_port_cannot_be_gunicorns_behind_the_proxy():
    with pytest.raises(boot.BootScriptError, match="app_port"):
        boot.render_user_data(make_spec(app_port=PORT_BEHIND_PROXY))


# ---------------------------------------------------------------------------------------
# The units' sandbox, as systemd itself rates it
# ---------------------------------------------------------------------------------------
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", ["pyscale", "pyscale-proxy"])
def test_systemd_rates_each_units_exposure_ok(tmp_path, unit):
    path = tmp_path / f"{unit}.service"
    rendered = boot.systemd_unit(make_spec()) if unit == "pyscale" else boot.proxy_unit()
    path.write_text(rendered + "\n")

    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    score = float(result.stdout.rsplit(f"{unit}.service: ", 1)[1].split()[0])

    assert score <= 2.5, result.stdout


# ---------------------------------------------------------------------------------------
# The launch lifecycle action: nothing half-installed goes in service (or into the warm pool)
# ---------------------------------------------------------------------------------------
def test_the_boot_completes_its_launch_only_once_the_app_answers(boot_machine):
    result = boot_machine.run(boot.render_user_data(boot_machine.spec()))
    calls = boot_machine.calls()
    complete = next(c for c in calls if "complete-lifecycle-action" in c)
    health = [i for i, c in enumerate(calls) if c.startswith("curl") and HEALTH_PATH in c]

    assert result.returncode == 0, result.stderr
    assert lifecycle_result(calls) == ["CONTINUE"]
    assert (
        f"--auto-scaling-group-name {GROUP} --lifecycle-hook-name {boot.LAUNCH_HOOK_NAME} "
        f"--instance-id {INSTANCE_ID}"
    ) in complete
    assert health[-1] < calls.index(complete)
    assert calls.index(
        "systemctl enable --now pyscale.service pyscale-proxy.service"
    ) < calls.index(complete)


def test_every_later_boot_completes_it_again_for_instances_leaving_the_warm_pool(boot_machine):
    result = boot_machine.run(boot.render_user_data(boot_machine.spec()))
    unit = (boot_machine.root / "etc/systemd/system/pyscale-lifecycle.service").read_text()
    script = boot_machine.root / boot.LIFECYCLE_PATH.lstrip("/")

    assert result.returncode == 0, result.stderr
    assert "systemctl enable pyscale-lifecycle.service" in boot_machine.calls()
    assert f"ExecStart={boot.LIFECYCLE_PATH}" in unit
    assert "After=pyscale.service" in unit
    assert "WantedBy=multi-user.target" in unit
    assert script.stat().st_mode & stat.S_IXUSR
    assert shellcheck(script.read_text()).returncode == 0


def test_no_pending_action_is_not_a_failure(boot_machine):
    boot_machine.env["STUB_NO_ACTION"] = "1"

    result = boot_machine.run(boot.render_user_data(boot_machine.spec()))

    assert result.returncode == 0, result.stderr
    assert "no launch lifecycle action pending (CONTINUE)" in result.stderr


def test_the_install_reaches_no_package_index(boot_machine, tmp_path, monkeypatch):
    """The real pip, in a real venv, installs the release's real dependencies from its
    wheelhouse alone — every index and proxy it could ask points at a loopback server that
    records and refuses — and the boot's sizing (`python -m app.sizing`, the app's settings)
    runs on what it installed."""
    index = SimpleIndex(tmp_path / "empty-index")
    # This machine's interpreter stands in for the instance's python3.12 (the stub below),
    # so the wheelhouse holds the locked dependencies as installed here, for it.
    monkeypatch.setattr(wheelhouse, "PYTHON_VERSION", "{}.{}".format(*sys.version_info[:2]))
    architecture = next(a for a, m in wheelhouse.MACHINES.items() if m == platform.machine())
    wheels = tmp_path / "wheels" / architecture
    built = installed_wheels(wheels, metadata.requires("pyscale") or [])
    (wheels / "requirements.txt").write_text(requirements_for(built))
    monkeypatch.setenv(PREBUILT_ENV, str(wheels.parent))
    artifact = build_artifact(REPO_ROOT, out_dir=tmp_path / "build", architecture=architecture)
    boot_machine.env["STUB_ARTIFACT"] = str(artifact.path)
    stubs = Path(boot_machine.env["PATH"].split(":")[0])
    (stubs / "python3.12").write_text(f'#!/bin/bash\nexec {sys.executable} "$@"\n')
    boot_machine.env.update(
        {
            "PIP_INDEX_URL": index.url,
            "PIP_EXTRA_INDEX_URL": index.url,
            "HTTP_PROXY": index.url,
            "HTTPS_PROXY": index.url,
        }
    )
    spec = replace(
        boot_machine.spec(),
        architecture=architecture,
        release_sha256=artifact.sha256,
        app_version=artifact.version,
    )
    boot_machine.env["STUB_MACHINE"] = platform.machine()
    try:
        result = boot_machine.run(boot.render_user_data(spec))
    finally:
        index.close()
    release_dir = boot_machine.root / "opt/pyscale/releases" / spec.app_version
    installed = subprocess.run(
        [release_dir / "venv/bin/python", "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert index.requests == []
    assert {f"{wheel.name}=={wheel.version}" for wheel, _ in built} <= {
        str(canonicalize_name(line.split("==")[0])) + "==" + line.split("==")[1]
        for line in installed.stdout.splitlines()
    }
    assert {"pydantic", "pydantic-settings"} <= {wheel.name for wheel, _ in built}
    # ... and the sizing ran there: the proxy admits the app's own count for this machine
    server = load_settings(boot.app_environment(spec)).server
    assert (boot_machine.root / "etc/pyscale/proxy.env").read_text() == (
        f"{proxy.ADMITTED_REQUESTS_VARIABLE}="
        f"{admitted_requests(workers_for(server.web_concurrency), server.web_threads)}\n"
    )
