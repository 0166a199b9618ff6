"""The EC2 boot script (user data) of the app fleet: one template, rendered from plain values.

``render_user_data(BootSpec(...))`` fills ``user_data.sh.tmpl`` and returns the script;
``encode_user_data`` gives the base64 form a launch template takes. Rendering is pure
Python over resolved strings, so the fleet calls it inside ``Output.apply`` (it creates no
resource) and the tests call it directly, run shellcheck on it and execute it.

What the script carries: where the release is (bucket, key, object version, SHA-256), the
app's environment (names from ``app.contract.Env``), its systemd unit, and the buffering
proxy in front of it (HAProxy, ``infra/boot/proxy.py``: why, there) with its own unit. What
it never carries: a secret. The cache AUTH token reaches the app only as the Secrets Manager
ARN.

Both units are sandboxed as far as a Python web service and HAProxy tolerate
(``SANDBOX``): `systemd-analyze security` rates them "OK", and tests run the app under the
same kernel restrictions (tests/support/sandbox.py).

Placeholders are ``@@name`` (bash owns ``$``). Every value spliced into shell code is
``shlex.quote``d; the env file, unit and agent config go into quoted heredocs, so nothing
in them is expanded by bash.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from app.contract import (
    GRACEFUL_TIMEOUT_SECONDS,
    HEALTH_PATH,
    METRICS_PATH,
    PORT_BEHIND_PROXY,
    Env,
)
from infra.boot.proxy import ADMITTED_REQUESTS_VARIABLE, InstanceProxy, render_instance_config

TEMPLATE_PATH: Final = Path(__file__).with_name("user_data.sh.tmpl")
# EC2 rejects user data over 16 KB (before base64 encoding).
USER_DATA_LIMIT_BYTES: Final = 16 * 1024
# AL2023 keeps /usr/bin/python3 at 3.9 for the OS; newer Pythons are separate packages
# (python3.11 ... python3.14, AWS "Python in AL2023" user guide). The lock file's wheels
# are resolved for requires-python >= 3.11.
PYTHON: Final = "python3.12"
SERVICE: Final = "pyscale"
SERVICE_USER: Final = "pyscale"
PROXY_SERVICE: Final = "pyscale-proxy"
APP_ROOT: Final = "/opt/pyscale/current"
ENV_FILE: Final = "/etc/pyscale/app.env"
PROXY_CONFIG: Final = "/etc/pyscale/proxy.cfg"
PROXY_ENV_FILE: Final = "/etc/pyscale/proxy.env"
# Where AL2023's haproxy package installs it (Fedora's packaging).
HAPROXY: Final = "/usr/sbin/haproxy"
APP_LOG_FILE: Final = "/var/log/pyscale/app.log"
# The app's gunicorn settings travel inside the release (app/ is always packaged).
GUNICORN_CONFIG: Final = "app/gunicorn.conf.py"
# `uname -m` for each EC2 architecture name.
MACHINE: Final = {"arm64": "aarch64", "x86_64": "x86_64"}

_ENV_VALUE = re.compile(r"^[A-Za-z0-9_.:/,@+=*-]*$")
_HEREDOC_TERMINATORS = (
    "PYSCALE_ENV",
    "PYSCALE_UNIT",
    "PYSCALE_PROXY",
    "PYSCALE_PROXY_UNIT",
    "PYSCALE_CWAGENT",
    "PYSCALE_PROMETHEUS",
    "PYSCALE_LOGROTATE",
    "PYSCALE_LIFECYCLE",
    "PYSCALE_LIFECYCLE_UNIT",
)
# The Auto Scaling group's launch lifecycle hook (infra/fleet.py creates it with the group):
# a launching instance waits in Pending:Wait (Warmed:Pending:Wait for the warm pool) until
# the boot completes the action.
LAUNCH_HOOK_NAME: Final = "pyscale-boot"
LIFECYCLE_PATH: Final = f"/usr/local/sbin/{SERVICE}-lifecycle"

# The sandbox both units run in: what a Python web service (and HAProxy) tolerate, checked
# by running the app under the same kernel restrictions (tests/infra/test_unit_sandbox.py).
# Not set, on purpose: PrivateNetwork (it serves the network), IPAddressAllow/Deny (the
# cache and the AWS APIs have addresses no stack knows in advance), RootDirectory.
SANDBOX: Final = (
    "NoNewPrivileges=true",
    # No capability at all: ports above 1024, files it owns; nothing else is needed.
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    # The whole file system read-only but for RuntimeDirectory (the metrics files) and
    # a private /tmp (gunicorn's worker heartbeat files); the log file is opened by systemd.
    "ProtectSystem=strict",
    "ProtectHome=true",
    "PrivateTmp=true",
    "PrivateDevices=true",
    "PrivateMounts=true",
    "PrivateUsers=true",
    "ProtectKernelTunables=true",
    "ProtectKernelModules=true",
    "ProtectKernelLogs=true",
    "ProtectControlGroups=true",
    "ProtectClock=true",
    "ProtectHostname=true",
    "ProtectProc=invisible",
    "ProcSubset=pid",
    "LockPersonality=true",
    # CPython 3.12 (no JIT) and HAProxy without PCRE JIT never need writable code pages.
    "MemoryDenyWriteExecute=true",
    # IPv4/IPv6 for clients, the cache and the AWS APIs; UNIX for sd_notify and the journal.
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces=true",
    "RestrictRealtime=true",
    "RestrictSUIDSGID=true",
    "RemoveIPC=true",
    "KeyringMode=private",
    "DevicePolicy=closed",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @resources",
    # A refused call fails with EPERM (which Python reports) instead of killing the process.
    "SystemCallErrorNumber=EPERM",
    "UMask=0027",
)


class BootScriptError(ValueError):
    """The values cannot make a valid boot script (the message names the field)."""


class _Template(string.Template):
    delimiter = "@@"


@dataclass(frozen=True)
class CacheConnection:
    """How the app reaches the shared cache."""

    endpoint: str
    """Primary endpoint, or the configuration endpoint in cluster mode."""
    port: int
    tls: bool
    cluster: bool
    auth_secret_arn: str | None
    """Secrets Manager ARN of the AUTH token; None when AUTH is off."""
    iam_user: str | None = None
    """IAM authentication: the ElastiCache user the app connects as (None: no IAM)."""
    iam_replication_group: str | None = None
    """IAM authentication: the replication group its tokens are signed for."""

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{self.endpoint}:{self.port}"


@dataclass(frozen=True)
class AppMetrics:
    """Where the CloudWatch agent sends the app's Prometheus metrics (scraped on the
    instance): the EMF log group, the CloudWatch namespace, and the ``stack`` label every
    metric carries as its dimension."""

    log_group_name: str
    namespace: str
    stack: str


# The app's metrics the agent publishes, each with the dimension sets it gets. Counters
# arrive as per-minute deltas; the latency summary's _sum/_count give average latency per
# endpoint (the agent drops Prometheus histograms: CloudWatch agent docs, "Prometheus metric
# type conversion"). A test checks each name against the app's real /metrics output.
PUBLISHED_METRICS: Final = (
    (("pyscale_cache_hits_total",), (("stack",), ("stack", "layer"))),
    (
        (
            "pyscale_cache_misses_total",
            "pyscale_cache_errors_total",
            "pyscale_cache_bypasses_total",
            "pyscale_report_computations_total",
        ),
        (("stack",),),
    ),
    (
        ("pyscale_http_request_seconds_sum", "pyscale_http_request_seconds_count"),
        (("stack", "endpoint"),),
    ),
)
PROMETHEUS_JOB: Final = "pyscale"
PROMETHEUS_CONFIG: Final = "/opt/aws/amazon-cloudwatch-agent/etc/prometheus.yaml"
SCRAPE_INTERVAL: Final = "1m"


@dataclass(frozen=True)
class BootSpec:
    """Everything the boot script needs, as resolved plain values."""

    region: str
    architecture: Literal["arm64", "x86_64"]
    release_bucket: str
    release_key: str
    release_version_id: str
    """The S3 object version: an instance gets exactly the release its launch template names."""
    release_sha256: str
    app_version: str
    """APP_VERSION: in every cache key, so a new release starts with fresh keys."""
    wsgi_module: str
    cache: CacheConnection
    cache_ttl_seconds: int
    forwarded_allow_ips: str
    """Addresses whose X-Forwarded-* headers gunicorn trusts: the VPC (the ALB lives there)."""
    log_group_name: str
    metrics: AppMetrics
    web_concurrency: int | None = None
    """None: gunicorn derives its workers from the vCPUs."""
    app_port: int = 8000
    log_level: str = "INFO"
    trusted_hosts: tuple[str, ...] = ()
    """The names clients reach the app by (the stack's domain, the ALB's DNS name); any
    other Host gets a 400. Empty: any Host (TRUSTED_HOSTS unset)."""


def app_environment(spec: BootSpec) -> dict[str, str]:
    """The app's environment on EC2, except INSTANCE_ID (read from IMDS at boot)."""
    env = {
        # Behind the instance's proxy, which holds the load balancer's port (spec.app_port)
        # and is gunicorn's only peer: the one whose X-Forwarded-* it trusts. The proxy
        # itself takes them only from spec.forwarded_allow_ips (the load balancer).
        Env.PORT: str(PORT_BEHIND_PROXY),
        Env.APP_VERSION: spec.app_version,
        Env.AWS_REGION: spec.region,
        Env.LOG_LEVEL: spec.log_level,
        Env.FORWARDED_ALLOW_IPS: "127.0.0.1",
        Env.PROMETHEUS_MULTIPROC_DIR: f"/run/{SERVICE}/metrics",
        Env.REDIS_URL: spec.cache.url,
        Env.REDIS_CLUSTER: "true" if spec.cache.cluster else "false",
        Env.CACHE_TTL_SECONDS: str(spec.cache_ttl_seconds),
    }
    if spec.cache.auth_secret_arn:
        env[Env.REDIS_AUTH_SECRET_ARN] = spec.cache.auth_secret_arn
    if spec.trusted_hosts:
        # Loopback for the boot's own check and the proxy's health backend (which gives the
        # ALB's check, whatever Host it carries, this one).
        env[Env.TRUSTED_HOSTS] = ",".join((*spec.trusted_hosts, "127.0.0.1", "localhost"))
    if spec.cache.iam_user and spec.cache.iam_replication_group:
        env[Env.REDIS_IAM_USER] = spec.cache.iam_user
        env[Env.REDIS_IAM_REPLICATION_GROUP] = spec.cache.iam_replication_group
    if spec.web_concurrency:
        env[Env.WEB_CONCURRENCY] = str(spec.web_concurrency)
    return env


def systemd_unit(spec: BootSpec) -> str:
    """gunicorn under systemd: notify-ready, graceful stop, restarted on failure, sandboxed."""
    return "\n".join(
        [
            "[Unit]",
            f"Description=pyscale web app {spec.wsgi_module} (gunicorn)",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            # gunicorn calls sd_notify(READY=1) once its workers are up.
            "Type=notify",
            "NotifyAccess=main",
            f"User={SERVICE_USER}",
            f"Group={SERVICE_USER}",
            f"WorkingDirectory={APP_ROOT}",
            f"EnvironmentFile={ENV_FILE}",
            # Loopback only: the proxy in front is the one way in (the command line wins
            # over the config's bind on every interface).
            f"ExecStart={APP_ROOT}/venv/bin/gunicorn --config {GUNICORN_CONFIG} "
            f"--bind 127.0.0.1:{PORT_BEHIND_PROXY} {spec.wsgi_module}",
            "ExecReload=/bin/kill -s HUP $MAINPID",
            # SIGTERM to gunicorn only; it drains its workers within the graceful timeout.
            "KillMode=mixed",
            f"TimeoutStopSec={GRACEFUL_TIMEOUT_SECONDS + 10}",
            "Restart=always",
            "RestartSec=2",
            # /run/pyscale: PROMETHEUS_MULTIPROC_DIR lives here, the one path it writes.
            f"RuntimeDirectory={SERVICE}",
            f"StandardOutput=append:{APP_LOG_FILE}",
            f"StandardError=append:{APP_LOG_FILE}",
            *SANDBOX,
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]
    )


def proxy_unit() -> str:
    """HAProxy in front of gunicorn, as a user of its own that exists while it runs."""
    return "\n".join(
        [
            "[Unit]",
            "Description=pyscale buffering proxy in front of gunicorn (HAProxy)",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            f"EnvironmentFile={PROXY_ENV_FILE}",
            f"ExecStart={HAPROXY} -db -f {PROXY_CONFIG}",
            # HAProxy's soft stop: no new connections, the ones in flight finish (SIGTERM
            # would cut them); bounded as gunicorn's stop is.
            "KillSignal=SIGUSR1",
            f"TimeoutStopSec={GRACEFUL_TIMEOUT_SECONDS + 10}",
            "Restart=always",
            "RestartSec=2",
            "DynamicUser=true",
            *SANDBOX,
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]
    )


def lifecycle_script(spec: BootSpec) -> str:
    """Completes the instance's launch lifecycle action; the boot script runs it at its end,
    a unit at every later boot (an instance leaving the warm pool pauses again)."""
    health = shlex.quote(f"http://127.0.0.1:{spec.app_port}{HEALTH_PATH}")
    imds = "curl --fail --silent --show-error --retry 5 --max-time 5"
    return f"""#!/bin/bash
# [CONTINUE|ABANDON]; none: CONTINUE once the app answers. Nothing pending is no error.
set -euo pipefail
readonly REGION={shlex.quote(spec.region)}
readonly HOOK={shlex.quote(LAUNCH_HOOK_NAME)}
log() {{ printf '{SERVICE}-lifecycle: %s\\n' "$*" >&2; }}
result="${{1:-}}"
if [[ -z "${{result}}" ]]; then
  result=ABANDON
  curl --fail --silent --show-error --output /dev/null --retry 60 --retry-delay 2 \\
    --retry-connrefused --max-time 5 {health} && result=CONTINUE
fi
token="$({imds} -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \\
  http://169.254.169.254/latest/api/token)"
instance_id="$({imds} -H "X-aws-ec2-metadata-token: ${{token}}" \\
  http://169.254.169.254/latest/meta-data/instance-id)"
group="$(aws autoscaling describe-auto-scaling-instances --region "${{REGION}}" \\
  --instance-ids "${{instance_id}}" --query 'AutoScalingInstances[0].AutoScalingGroupName' \\
  --output text)"
if [[ -z "${{group}}" || "${{group}}" == None ]]; then
  log "not in an Auto Scaling group"
elif answer="$(aws autoscaling complete-lifecycle-action --region "${{REGION}}" \\
  --auto-scaling-group-name "${{group}}" --lifecycle-hook-name "${{HOOK}}" \\
  --instance-id "${{instance_id}}" --lifecycle-action-result "${{result}}" 2>&1)"; then
  log "${{result}}: ${{HOOK}} of ${{group}}"
elif [[ "${{answer}}" == *"No active Lifecycle Action"* ]]; then
  log "no launch lifecycle action pending (${{result}})"
else
  log "could not complete ${{HOOK}}: ${{answer}}"
  exit 1
fi
[[ "${{result}}" == CONTINUE ]]"""


def lifecycle_unit() -> str:
    """Runs the lifecycle script at every boot, after the app's own unit."""
    return "\n".join(
        [
            "[Unit]",
            "Description=pyscale: complete the launch lifecycle action once the app answers",
            f"After={SERVICE}.service {PROXY_SERVICE}.service network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"ExecStart={LIFECYCLE_PATH}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]
    )


def instance_proxy(spec: BootSpec) -> InstanceProxy:
    return InstanceProxy(listen_port=spec.app_port, trusted_forwarders=spec.forwarded_allow_ips)


def cloudwatch_agent_config(spec: BootSpec) -> str:
    """App log file to the fleet's log group; the app's Prometheus metrics (scraped from
    gunicorn on the instance, never through the load balancer) and memory use per instance
    (EC2 has no such metric) into the app's namespace, the only one the role may write."""
    declarations = [
        {
            "source_labels": ["job"],
            "label_matcher": f"^{PROMETHEUS_JOB}$",
            "dimensions": [list(dimensions) for dimensions in dimension_sets],
            # One alternation per declaration: the user data has to stay under 16 KB.
            "metric_selectors": [f"^({'|'.join(names)})$"],
        }
        for names, dimension_sets in PUBLISHED_METRICS
    ]
    config = {
        "logs": {
            "logs_collected": {
                "files": {
                    "collect_list": [
                        {
                            "file_path": APP_LOG_FILE,
                            "log_group_name": spec.log_group_name,
                            "log_stream_name": "{instance_id}",
                        }
                    ]
                }
            },
            "metrics_collected": {
                "prometheus": {
                    "log_group_name": spec.metrics.log_group_name,
                    "prometheus_config_path": PROMETHEUS_CONFIG,
                    "emf_processor": {
                        "metric_namespace": spec.metrics.namespace,
                        "metric_declaration": declarations,
                    },
                }
            },
        },
        "metrics": {
            "namespace": spec.metrics.namespace,
            "append_dimensions": {"AutoScalingGroupName": "${aws:AutoScalingGroupName}"},
            "aggregation_dimensions": [["AutoScalingGroupName"]],
            "metrics_collected": {"mem": {"measurement": ["mem_used_percent"]}},
        },
    }
    # Compact: user data has to stay under 16 KB, and no one reads this file but the agent.
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def prometheus_scrape_config(spec: BootSpec) -> str:
    """The agent's Prometheus scrape of the app on this instance (loopback only), at the
    port gunicorn itself listens on (the app's PORT): never through a proxy or the ALB,
    which answer 404 for the metrics path."""
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": PROMETHEUS_JOB,
                "metrics_path": METRICS_PATH,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{app_environment(spec)[Env.PORT]}"],
                        "labels": {"stack": spec.metrics.stack},
                    }
                ],
            }
        ],
    }
    # JSON is YAML (no YAML emitter needed here), and compact, as the agent's config.
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def _check(spec: BootSpec) -> None:
    if spec.app_port == PORT_BEHIND_PROXY:
        raise BootScriptError(
            f"app_port: {PORT_BEHIND_PROXY} is gunicorn's, behind the instance's proxy; the "
            "load balancer's port must be another"
        )
    if spec.architecture not in MACHINE:
        raise BootScriptError(
            f"architecture: must be one of {', '.join(MACHINE)}, got {spec.architecture!r}"
        )
    if not re.fullmatch(r"[0-9a-f]{64}", spec.release_sha256):
        raise BootScriptError("release_sha256: must be 64 lowercase hex digits")
    for name, value in app_environment(spec).items():
        if not _ENV_VALUE.match(value) or not value or re.search(r"\bNone\b", value):
            raise BootScriptError(
                f"environment {name}={value!r}: must be non-empty and made of "
                "A-Z a-z 0-9 _ . : / , @ + = * - (an unresolved value?)"
            )
    for field in ("release_bucket", "release_key", "release_version_id", "log_group_name"):
        value = getattr(spec, field)
        if not value or value == "None":
            raise BootScriptError(f"{field}: is empty or unresolved ({value!r})")
    for field in ("log_group_name", "namespace", "stack"):
        value = getattr(spec.metrics, field)
        if not value or value == "None":
            raise BootScriptError(f"metrics.{field}: is empty or unresolved ({value!r})")


def strip_comment_lines(script: str) -> str:
    """The script without its whole-line ``# `` comments (the template keeps them for its
    readers): EC2 takes at most 16 KB of user data. Shebangs (``#!``) and lines that only
    contain a ``#`` after code are kept; a ``# `` line is a comment to bash, systemd, HAProxy
    and logrotate alike, so stripping one inside a heredoc changes no behaviour."""
    lines = script.splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("# ")) + "\n"


def render_user_data(spec: BootSpec) -> str:
    """The boot script for these values; raises BootScriptError if they can't make one."""
    _check(spec)
    quoted = {
        "region": spec.region,
        "machine": MACHINE[spec.architecture],
        "python": PYTHON,
        "release_bucket": spec.release_bucket,
        "release_key": spec.release_key,
        "release_version_id": spec.release_version_id,
        "release_sha256": spec.release_sha256,
        "app_version": spec.app_version,
        "app_port": str(spec.app_port),
        "health_path": HEALTH_PATH,
        "service": SERVICE,
        "service_user": SERVICE_USER,
        "log_group": spec.log_group_name,
        "instance_id_var": Env.INSTANCE_ID,
        "proxy_service": PROXY_SERVICE,
        "admitted_requests_var": ADMITTED_REQUESTS_VARIABLE,
        "prometheus_config": PROMETHEUS_CONFIG,
    }
    blocks = {
        "env_file": "\n".join(f"{k}={v}" for k, v in sorted(app_environment(spec).items())),
        "systemd_unit": systemd_unit(spec),
        "proxy_config": render_instance_config(instance_proxy(spec)),
        "proxy_unit": proxy_unit(),
        "cloudwatch_agent_config": cloudwatch_agent_config(spec),
        "lifecycle_script": lifecycle_script(spec),
        "lifecycle_unit": lifecycle_unit(),
        "prometheus_scrape_config": prometheus_scrape_config(spec),
    }
    for name, block in blocks.items():
        if any(line.strip() in _HEREDOC_TERMINATORS for line in block.splitlines()):
            raise BootScriptError(f"{name}: contains a heredoc terminator line")
    values = {name: shlex.quote(value) for name, value in quoted.items()} | blocks
    script = strip_comment_lines(_Template(TEMPLATE_PATH.read_text()).substitute(values))
    size = len(script.encode())
    if size >= USER_DATA_LIMIT_BYTES:
        raise BootScriptError(
            f"user data is {size} bytes; EC2 allows under {USER_DATA_LIMIT_BYTES} before base64"
        )
    return script


def encode_user_data(script: str) -> str:
    """Base64, as ``aws.ec2.LaunchTemplate(user_data=...)`` requires."""
    return base64.b64encode(script.encode()).decode("ascii")
