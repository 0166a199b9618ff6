"""Every environment variable the app and its gunicorn config read, validated in one place.

The app is configured only through the environment (the EC2 boot script and the local runner
set it). Names come from app.contract.Env; a value that is present but invalid stops the
process at start with a message naming the variable and what is allowed — every problem at
once, never a traceback.

Variable (default): meaning and allowed values.

Serving (read by app/gunicorn.conf.py)
  PORT (8000): TCP port gunicorn binds, 1-65535.
  WEB_CONCURRENCY (vCPUs + 1): gunicorn worker processes, 1-256.
  WEB_THREADS (4): threads per gthread worker, 1-64.
  FORWARDED_ALLOW_IPS (127.0.0.1,::1): addresses/CIDRs whose X-Forwarded-* headers are
    trusted — the load balancer only; `*` trusts any (only where the network admits
    nothing but the load balancer).
  PROMETHEUS_MULTIPROC_DIR ($TMPDIR/pyscale-metrics-<PORT>): multiprocess metrics files;
    one directory per gunicorn master, emptied when it starts.
  LOG_LEVEL (INFO): DEBUG, INFO, WARNING or ERROR.
  TRUSTED_HOSTS (unset: any): comma-separated host names (or IPv4 addresses) the app
    answers for; `.example.com` also admits its subdomains. Any other Host header gets a
    400, since redirects are built from it. List 127.0.0.1 and localhost too: the health
    checks come from there (`pyscale local up` and the EC2 boot script add them).

Redis (the shared cache; unset REDIS_URL = no shared cache, the near cache still works)
  REDIS_URL (unset): redis://[:password@]host[:port][/db], or rediss://... for TLS.
  REDIS_CLUSTER (false): true = cluster-mode client; REDIS_URL is the configuration endpoint.
  REDIS_AUTH_SECRET_ARN (unset): Secrets Manager ARN holding the AUTH token; fetched once at
    start (exclusive with a password in REDIS_URL).
  AWS_REGION (the ARN's region): region for Secrets Manager.
  REDIS_TLS_CA_FILE (system CAs): CA bundle for the server certificate (rediss:// only).
  REDIS_TIMEOUT_SECONDS (0.25): connect and command timeout, 0.01-5.

Cache
  CACHE_TTL_SECONDS (300): lifetime of a cached report, 1-604800.
  CACHE_TTL_JITTER (0.1): each TTL is stretched by a random 0..this fraction, 0-1, so keys
    cached together don't expire together.
  CACHE_LOCK_TIMEOUT_SECONDS (5): single-flight lock lifetime, 0.1-60; waiters compute
    themselves after it.
  NEAR_CACHE_MAX_BYTES (16777216): per-process near cache size (bytes of values); 0 = off.
  CIRCUIT_BREAKER_FAILURES (3): consecutive Redis errors that open the breaker, 1-100.
  CIRCUIT_BREAKER_RESET_SECONDS (5): how long it stays open before one trial call, 0.05-300.

Identity
  APP_VERSION (dev): release label, 1-64 of [A-Za-z0-9._-]; in every cache key, so a deploy
    invalidates.
  INSTANCE_ID (unset): EC2 instance id (the boot script sets it); shown by GET /.
  INSTANCE_NAME (unset): replica name off EC2 (the local runner sets it); shown by GET /.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from app.contract import DEFAULT_PORT, Env

T = TypeVar("T", bound=float)

_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SECRET_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"
)
_REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A host name or IPv4 address; a leading dot admits its subdomains (Flask's TRUSTED_HOSTS).
_HOST_NAME = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")


class SettingsError(ValueError):
    """One or more environment variables are invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "invalid environment configuration:\n" + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True)
class RedisSettings:
    """Where the shared cache lives and how to reach it."""

    url: str
    cluster: bool
    tls: bool
    auth_secret_arn: str | None
    tls_ca_file: str | None
    timeout_seconds: float


@dataclass(frozen=True)
class CacheSettings:
    ttl_seconds: int
    ttl_jitter: float
    lock_timeout_seconds: float
    near_cache_max_bytes: int
    breaker_failures: int
    breaker_reset_seconds: float


@dataclass(frozen=True)
class ServerSettings:
    """What app/gunicorn.conf.py needs (the app itself never reads these)."""

    port: int
    web_concurrency: int | None
    web_threads: int
    forwarded_allow_ips: str


@dataclass(frozen=True)
class Settings:
    app_version: str
    instance_id: str | None
    instance_name: str | None
    aws_region: str | None
    log_level: str
    redis: RedisSettings | None
    cache: CacheSettings
    server: ServerSettings
    trusted_hosts: tuple[str, ...] = ()

    def replace_redis(self, redis: RedisSettings | None) -> Settings:
        """A copy pointing at another Redis (tests and benchmarks swap servers)."""
        return Settings(**{**self.__dict__, "redis": redis})


class _Reader:
    """Reads variables, collecting every problem instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def number(
        self, name: str, default: T, parse: Callable[[str], T], low: float, high: float
    ) -> T:
        text = self.raw(name)
        if text is None:
            return default
        kind = "an integer" if parse is int else "a number"
        try:
            value = parse(text)
        except ValueError:
            self.problems.append(f"{name}={text!r}: must be {kind} from {low} to {high}")
            return default
        if not (low <= value <= high) or (isinstance(value, float) and math.isnan(value)):
            self.problems.append(f"{name}={text!r}: must be {kind} from {low} to {high}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        text = self.raw(name)
        if text is None:
            return default
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        self.problems.append(f"{name}={text!r}: must be true or false (1/0, yes/no, on/off)")
        return default

    def matching(self, name: str, pattern: re.Pattern[str], allowed: str) -> str | None:
        text = self.raw(name)
        if text is not None and not pattern.match(text):
            self.problems.append(f"{name}={text!r}: must be {allowed}")
            return None
        return text


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Validate the environment into frozen settings.

    Raises SettingsError naming every bad variable and what it allows.
    """
    env = _Reader(os.environ if environ is None else environ)

    app_version = (
        env.matching(Env.APP_VERSION, _VERSION_PATTERN, "1-64 of A-Z a-z 0-9 . _ -") or "dev"
    )
    log_level = (env.raw(Env.LOG_LEVEL) or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        allowed = ", ".join(_LOG_LEVELS)
        env.problems.append(f"{Env.LOG_LEVEL}={log_level!r}: must be one of {allowed}")
        log_level = "INFO"

    redis = _load_redis(env)
    cache = CacheSettings(
        ttl_seconds=env.number(Env.CACHE_TTL_SECONDS, 300, int, 1, 604_800),
        ttl_jitter=env.number(Env.CACHE_TTL_JITTER, 0.1, float, 0.0, 1.0),
        lock_timeout_seconds=env.number(Env.CACHE_LOCK_TIMEOUT_SECONDS, 5.0, float, 0.1, 60.0),
        near_cache_max_bytes=env.number(Env.NEAR_CACHE_MAX_BYTES, 16 * 1024 * 1024, int, 0, 2**34),
        breaker_failures=env.number(Env.CIRCUIT_BREAKER_FAILURES, 3, int, 1, 100),
        breaker_reset_seconds=env.number(
            Env.CIRCUIT_BREAKER_RESET_SECONDS, 5.0, float, 0.05, 300.0
        ),
    )
    server = ServerSettings(
        port=env.number(Env.PORT, DEFAULT_PORT, int, 1, 65_535),
        # 0 (outside the allowed range) stands for unset: gunicorn.conf.py sizes it.
        web_concurrency=env.number(Env.WEB_CONCURRENCY, 0, int, 1, 256) or None,
        web_threads=env.number(Env.WEB_THREADS, 4, int, 1, 64),
        forwarded_allow_ips=_forwarded_allow_ips(env),
    )
    aws_region = env.raw(Env.AWS_REGION)
    if redis is not None and redis.auth_secret_arn and aws_region is not None:
        # Only checked where it is used (the Secrets Manager client): boto3's own error
        # for a malformed region is far from the variable.
        aws_region = env.matching(Env.AWS_REGION, _REGION_PATTERN, "an AWS region, e.g. eu-west-1")
    if redis is not None and redis.auth_secret_arn and aws_region is None:
        match = _SECRET_ARN_PATTERN.match(redis.auth_secret_arn)
        aws_region = match.group("region") if match else None

    trusted_hosts = _trusted_hosts(env)

    if env.problems:
        raise SettingsError(env.problems)
    return Settings(
        app_version=app_version,
        instance_id=env.raw(Env.INSTANCE_ID),
        instance_name=env.raw(Env.INSTANCE_NAME),
        aws_region=aws_region,
        log_level=log_level,
        redis=redis,
        cache=cache,
        server=server,
        trusted_hosts=trusted_hosts,
    )


def _trusted_hosts(env: _Reader) -> tuple[str, ...]:
    text = env.raw(Env.TRUSTED_HOSTS)
    if text is None:
        return ()
    hosts = tuple(entry.strip().lower() for entry in text.split(",") if entry.strip())
    for host in hosts:
        if not _HOST_NAME.fullmatch(host):
            env.problems.append(
                f"{Env.TRUSTED_HOSTS}={text!r}: {host!r} is not a host name (no scheme, port "
                "or path; a leading dot admits subdomains, e.g. .example.com)"
            )
            return ()
    return hosts


def _forwarded_allow_ips(env: _Reader) -> str:
    """Checked here, the way gunicorn checks it (strict networks, `*` = any), because
    gunicorn's own refusal is a bare "does not appear to be an IPv4 or IPv6 network" that
    names neither the setting nor the variable."""
    text = env.raw(Env.FORWARDED_ALLOW_IPS)
    if text is None:
        return "127.0.0.1,::1"
    for entry in (part.strip() for part in text.split(",")):
        if entry in ("", "*"):  # gunicorn skips empty entries too
            continue
        try:
            ipaddress.ip_network(entry)
        except ValueError:
            env.problems.append(
                f"{Env.FORWARDED_ALLOW_IPS}={text!r}: {entry!r} is not an IP address or a "
                "network (CIDR without host bits, e.g. 10.0.0.0/16); '*' trusts any address"
            )
            break
    return text


def _load_redis(env: _Reader) -> RedisSettings | None:
    url = env.raw(Env.REDIS_URL)
    cluster = env.boolean(Env.REDIS_CLUSTER, False)
    secret_arn = env.matching(
        Env.REDIS_AUTH_SECRET_ARN,
        _SECRET_ARN_PATTERN,
        "a Secrets Manager ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)",
    )
    ca_file = env.raw(Env.REDIS_TLS_CA_FILE)
    timeout = env.number(Env.REDIS_TIMEOUT_SECONDS, 0.25, float, 0.01, 5.0)
    if url is None:
        if cluster:
            env.problems.append(f"{Env.REDIS_CLUSTER}=true needs {Env.REDIS_URL}")
        for dependent in (Env.REDIS_AUTH_SECRET_ARN, Env.REDIS_TLS_CA_FILE):
            if env.raw(dependent) is not None:
                env.problems.append(f"{dependent} is set but {Env.REDIS_URL} is not")
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    allowed = "redis://[:password@]host[:port][/db] or rediss://... (TLS)"
    if parts is None or parts.scheme not in ("redis", "rediss") or not parts.hostname:
        env.problems.append(f"{Env.REDIS_URL}={_redact(url)!r}: must be {allowed}")
        return None
    if parts.query:
        # redis-py turns query parameters into client options that override ours (a
        # ?socket_timeout=30 would undo fail-fast) or into unknown ones that raise on every
        # request; the query itself is not echoed, as it may hold ?password=.
        env.problems.append(
            f"{Env.REDIS_URL}: query parameters are not supported; timeouts and TLS come from "
            f"{Env.REDIS_TIMEOUT_SECONDS} and {Env.REDIS_TLS_CA_FILE}"
        )
    if port is not None and not 1 <= port <= 65_535:
        env.problems.append(f"{Env.REDIS_URL}: port must be 1-65535")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        env.problems.append(f"{Env.REDIS_URL}: the path must be a database number, got {db!r}")
    if cluster and db not in ("", "0"):
        env.problems.append(
            f"{Env.REDIS_URL}: cluster mode has only database 0 ({Env.REDIS_CLUSTER}=true)"
        )
    if secret_arn and parts.password:
        env.problems.append(
            f"{Env.REDIS_AUTH_SECRET_ARN} and a password in {Env.REDIS_URL} are exclusive: use one"
        )
    tls = parts.scheme == "rediss"
    if ca_file is not None:
        if not tls:
            env.problems.append(f"{Env.REDIS_TLS_CA_FILE} needs a rediss:// {Env.REDIS_URL}")
        elif not os.path.isfile(ca_file):
            env.problems.append(f"{Env.REDIS_TLS_CA_FILE}={ca_file!r}: no such file")
        else:
            # Loaded once here so a file that holds no certificate stops the app at start;
            # redis-py would only fail at each connect, leaving the cache silently off.
            try:
                ssl.create_default_context(cafile=ca_file)
            except (ssl.SSLError, OSError) as error:
                env.problems.append(
                    f"{Env.REDIS_TLS_CA_FILE}={ca_file!r}: not a readable PEM CA bundle ({error})"
                )
    return RedisSettings(
        url=url,
        cluster=cluster,
        tls=tls,
        auth_secret_arn=secret_arn,
        tls_ca_file=ca_file,
        timeout_seconds=timeout,
    )


def _redact(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable>"
    if parts.password:
        return url.replace(":" + parts.password + "@", ":***@").replace(
            ":" + unquote(parts.password) + "@", ":***@"
        )
    return url
