"""Every environment variable the app and its gunicorn config read, each declared once.

The app is configured only through environment variables (the EC2 boot script and the local
runner set them): no file, no command-line option. `AppEnvironment` below declares each one
once — its name (from app.contract.Env), type, default, bounds, what it allows and, in its
docstring, what it means; the README's table of variables is generated from these
declarations (`make docs`). A blank value counts as unset. A value that is present but
invalid stops the process at start with one line per bad variable naming it and what it
allows — every problem at once, never a traceback (gunicorn.conf.py prints them, exits 2).

Rules that relate two variables sit on the later one's validator, which sees the earlier
ones once they are valid (pydantic validates fields in declaration order): a variable that
depends on REDIS_URL is only judged against a REDIS_URL that is itself valid.

The app reads the result as frozen, typed groups: `Settings` with `server`, `redis` (None
without REDIS_URL) and `cache`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Annotated, Any, Final, Literal, cast
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.contract import DEFAULT_PORT, Env

_SECRET_ARN_PATTERN: Final = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"
)
_REGION_PATTERN: Final = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
# ElastiCache's own rules: a user id begins with a letter, then letters, digits and hyphens
# (CreateUser API); a replication group id is 1-40 of those, with no "--" and no trailing
# hyphen (terraform-provider-aws validateReplicationGroupID).
_CACHE_USER_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_REPLICATION_GROUP_ID: Final = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,38}(?<!-)")
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A host name or IPv4 address; a leading dot admits its subdomains (Flask's TRUSTED_HOSTS).
_HOST_NAME: Final = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

# The error type of a problem a validator words itself (a whole line, naming the variable);
# any other error is worded from the variable's `allowed` text.
_WORDED: Final = "pyscale_worded"


class SettingsError(ValueError):
    """One or more environment variables are invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "invalid environment configuration:\n" + "\n".join(f"  - {p}" for p in problems)
        )


# -- the typed result the app reads ---------------------------------------------------------
@dataclass(frozen=True)
class RedisSettings:
    """Where the shared cache lives and how to reach it."""

    url: str
    cluster: bool
    tls: bool
    auth_secret_arn: str | None
    tls_ca_file: str | None
    timeout_seconds: float
    iam: IamAuth | None = None


@dataclass(frozen=True)
class IamAuth:
    """ElastiCache IAM authentication: whom the app's SigV4 tokens name (app/elasticache_iam.py)."""

    user_id: str
    replication_group_id: str
    region: str


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
    metrics_dir: str | None = None


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
        return replace(self, redis=redis)


# -- value types: parsed the way Python parses them, as the app always has -------------------
def _parsed_by(parse: Callable[[str], Any]) -> BeforeValidator:
    return BeforeValidator(lambda text: parse(text) if isinstance(text, str) else text)


def _flag(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(text)


# int("1.0") and int("0x10") fail where pydantic's own parsing would accept "1.0".
Integer = Annotated[int, _parsed_by(int)]
Number = Annotated[float, _parsed_by(float), Field(allow_inf_nan=False)]
Flag = Annotated[bool, _parsed_by(_flag)]


def variable(
    name: str,
    default: Any,
    section: str,
    *,
    allowed: str | None = None,
    shown: str | None = None,
    **constraints: Any,
) -> Any:
    """One variable's declaration: `name` from app.contract.Env, its default and README
    section; `allowed` words what a valid value is (derived from ge/le for numbers), `shown`
    the default when it is computed elsewhere (None here)."""
    if allowed is None:
        low, high = constraints["ge"], constraints["le"]
        kind = "an integer" if isinstance(low, int) and isinstance(high, int) else "a number"
        allowed = f"{kind} from {low} to {high}"
    extra: JsonDict = {"section": section, "allowed": allowed, "default": shown or _shown(default)}
    return Field(default, validation_alias=name, json_schema_extra=extra, **constraints)


def _shown(default: object) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


def _worded(problem: str) -> PydanticCustomError:
    return PydanticCustomError(_WORDED, "{problem}", {"problem": problem})


# Sections of the README's table.
SERVING: Final = "serving (gunicorn.conf.py)"
REDIS: Final = "Redis"
CACHE: Final = "cache"
IDENTITY: Final = "identity"
_REDIS_URL_FORMS: Final = "redis://[:password@]host[:port][/db] or rediss://... (TLS)"


# The mapping load_settings was given, if any (os.environ otherwise). pydantic-settings builds
# its sources inside the settings constructor, which takes no mapping to read instead of
# os.environ; a context variable hands it over for one call, safely across threads.
_GIVEN_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("_GIVEN_ENVIRON", default=None)


def present(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that count as set: surrounding whitespace dropped, blank = unset."""
    return {name: value.strip() for name, value in environ.items() if value.strip()}


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source, over the variables that count as set, of
    os.environ or of the mapping given to load_settings (tests and the local runner pass
    one). `_load_env_vars` is the hook pydantic-settings' own dotenv source overrides."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        given = _GIVEN_ENVIRON.get()
        return present(os.environ if given is None else given)


class AppEnvironment(BaseSettings):
    """The variables, in the order the README lists them. Each attribute's docstring is its
    description (what users read)."""

    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    # -- serving --------------------------------------------------------------------------
    port: Integer = variable(Env.PORT, DEFAULT_PORT, SERVING, ge=1, le=65_535)
    """TCP port gunicorn binds."""
    web_concurrency: Integer | None = variable(
        Env.WEB_CONCURRENCY, None, SERVING, shown="vCPUs + 1", ge=1, le=256
    )
    """gunicorn worker processes (app/sizing.py: vCPUs this process may run on, plus one)."""
    web_threads: Integer = variable(Env.WEB_THREADS, 4, SERVING, ge=1, le=64)
    """Threads per gthread worker."""
    forwarded_allow_ips: str = variable(
        Env.FORWARDED_ALLOW_IPS,
        "127.0.0.1,::1",
        SERVING,
        allowed="comma-separated IP addresses or networks (CIDR), or *",
    )
    """Addresses whose X-Forwarded-Proto gunicorn trusts: the load balancer only. `*` trusts
    any (only where the network admits nothing but the load balancer)."""
    prometheus_multiproc_dir: str | None = variable(
        Env.PROMETHEUS_MULTIPROC_DIR,
        None,
        SERVING,
        allowed="a directory this user owns (created if missing)",
        shown="$TMPDIR/pyscale-metrics-<PORT>",
    )
    """Multiprocess metrics files: one directory per gunicorn master, emptied when it starts,
    so replicas on one machine never share it."""
    log_level: LogLevel = variable(
        Env.LOG_LEVEL, "INFO", SERVING, allowed="DEBUG, INFO, WARNING or ERROR"
    )
    """Level of the app's and gunicorn's logs (any case)."""
    trusted_hosts: str | None = variable(
        Env.TRUSTED_HOSTS,
        None,
        SERVING,
        allowed="comma-separated host names or IPv4 addresses; .example.com admits subdomains",
        shown="unset: any",
    )
    """Host names the app answers for; any other Host header gets a 400, since redirects are
    built from it. List 127.0.0.1 and localhost too: the health checks come from there
    (`pyscale local up` and the EC2 boot script add them)."""

    # -- redis ----------------------------------------------------------------------------
    redis_url: str | None = variable(Env.REDIS_URL, None, REDIS, allowed=_REDIS_URL_FORMS)
    """The shared cache; unset, each process has only its near cache. No query parameters:
    timeouts and TLS trust come from the variables below."""
    redis_cluster: Flag = variable(
        Env.REDIS_CLUSTER, False, REDIS, allowed="true or false (1/0, yes/no, on/off)"
    )
    """Cluster-mode client; REDIS_URL is then the configuration endpoint (database 0 only)."""
    redis_auth_secret_arn: str | None = variable(
        Env.REDIS_AUTH_SECRET_ARN,
        None,
        REDIS,
        allowed="a Secrets Manager ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)",
    )
    """Secret holding the AUTH token (plain, or JSON with auth_token, token or password),
    fetched once by the gunicorn master. Exclusive with a password in REDIS_URL."""
    redis_iam_user: str | None = variable(
        Env.REDIS_IAM_USER,
        None,
        REDIS,
        allowed="an ElastiCache user id (a letter, then letters, digits and hyphens)",
    )
    """ElastiCache IAM authentication: the user the app connects as, with a 15-minute SigV4
    token of its AWS credentials (the instance role or the pod's) for each new connection
    instead of a password. Needs a rediss:// REDIS_URL, REDIS_IAM_REPLICATION_GROUP and
    AWS_REGION; exclusive with REDIS_AUTH_SECRET_ARN and a password in REDIS_URL. gunicorn
    stops at start (exit 2) when no AWS credentials can sign the tokens."""
    redis_iam_replication_group: str | None = variable(
        Env.REDIS_IAM_REPLICATION_GROUP,
        None,
        REDIS,
        allowed="an ElastiCache replication group id (1-40 letters, digits and hyphens)",
        validate_default=True,
    )
    """ElastiCache IAM authentication: the replication group the tokens are signed for
    (with REDIS_IAM_USER, and only with it)."""
    aws_region: str | None = variable(
        Env.AWS_REGION,
        None,
        REDIS,
        allowed="an AWS region, e.g. eu-west-1",
        shown="the secret ARN's region",
        validate_default=True,
    )
    """Region of the Secrets Manager client and of IAM tokens (checked only where used;
    required with REDIS_IAM_USER)."""
    redis_tls_ca_file: str | None = variable(
        Env.REDIS_TLS_CA_FILE, None, REDIS, allowed="a PEM CA bundle", shown="the system CAs"
    )
    """CA bundle the server certificate is checked against (rediss:// only)."""
    redis_timeout_seconds: Number = variable(
        Env.REDIS_TIMEOUT_SECONDS, 0.25, REDIS, ge=0.01, le=5.0
    )
    """Connect and command timeout: a Redis outage costs a request at most this."""

    # -- cache ----------------------------------------------------------------------------
    cache_ttl_seconds: Integer = variable(Env.CACHE_TTL_SECONDS, 300, CACHE, ge=1, le=604_800)
    """Lifetime of a cached report."""
    cache_ttl_jitter: Number = variable(Env.CACHE_TTL_JITTER, 0.1, CACHE, ge=0.0, le=1.0)
    """Each TTL is stretched by a random 0..this fraction, so keys cached together don't
    expire together."""
    cache_lock_timeout_seconds: Number = variable(
        Env.CACHE_LOCK_TIMEOUT_SECONDS, 5.0, CACHE, ge=0.1, le=60.0
    )
    """Single-flight lock lifetime; waiters compute themselves after it."""
    near_cache_max_bytes: Integer = variable(
        Env.NEAR_CACHE_MAX_BYTES, 16 * 1024 * 1024, CACHE, ge=0, le=2**34
    )
    """Per-process near cache size (bytes of values); 0 turns it off."""
    circuit_breaker_failures: Integer = variable(
        Env.CIRCUIT_BREAKER_FAILURES, 3, CACHE, ge=1, le=100
    )
    """Consecutive Redis errors that open the circuit breaker."""
    circuit_breaker_reset_seconds: Number = variable(
        Env.CIRCUIT_BREAKER_RESET_SECONDS, 5.0, CACHE, ge=0.05, le=300.0
    )
    """How long the breaker stays open before one trial call."""

    # -- identity -------------------------------------------------------------------------
    app_version: str = variable(
        Env.APP_VERSION,
        "dev",
        IDENTITY,
        allowed="1-64 of A-Z a-z 0-9 . _ -",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
    )
    """Release label; part of every cache key, so a deploy invalidates the cache."""
    instance_id: str | None = variable(Env.INSTANCE_ID, None, IDENTITY, allowed="any text")
    """EC2 instance id (the boot script sets it); shown by GET /."""
    instance_name: str | None = variable(Env.INSTANCE_NAME, None, IDENTITY, allowed="any text")
    """Replica name off EC2 (the local runner sets it); shown by GET /."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment only: no .env file, no secrets directory, no keyword arguments."""
        return (_Environment(settings_cls),)

    # -- single variables -----------------------------------------------------------------
    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, text: str) -> str:
        return text.upper()

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, text: str) -> str:
        """Checked here, the way gunicorn checks it (strict networks, `*` = any), because
        gunicorn's own refusal is a bare "does not appear to be an IPv4 or IPv6 network"
        that names neither the setting nor the variable."""
        for entry in (part.strip() for part in text.split(",")):
            if entry in ("", "*"):  # gunicorn skips empty entries too
                continue
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                raise _worded(
                    f"{Env.FORWARDED_ALLOW_IPS}={text!r}: {entry!r} is not an IP address or a "
                    "network (CIDR without host bits, e.g. 10.0.0.0/16); '*' trusts any address"
                ) from None
        return text

    @field_validator("trusted_hosts")
    @classmethod
    def _host_names(cls, text: str | None) -> str | None:
        for host in _hosts(text):
            if not _HOST_NAME.fullmatch(host):
                raise _worded(
                    f"{Env.TRUSTED_HOSTS}={text!r}: {host!r} is not a host name (no scheme, "
                    "port or path; a leading dot admits subdomains, e.g. .example.com)"
                )
        return text

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = _split(url)
        if parts is None or parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise _worded(f"{Env.REDIS_URL}={_redact(url)!r}: must be {_REDIS_URL_FORMS}")
        problems = []
        if parts.query:
            # redis-py turns query parameters into client options that override ours (a
            # ?socket_timeout=30 would undo fail-fast) or into unknown ones that raise on
            # every request; the query itself is not echoed, as it may hold ?password=.
            problems.append(
                "query parameters are not supported; timeouts and TLS come from "
                f"{Env.REDIS_TIMEOUT_SECONDS} and {Env.REDIS_TLS_CA_FILE}"
            )
        if parts.port is not None and not 1 <= parts.port <= 65_535:
            problems.append("port must be 1-65535")
        database = _database(parts)
        if database and not database.isdigit():
            problems.append(f"the path must be a database number, got {database!r}")
        if problems:
            raise _worded(f"{Env.REDIS_URL}: " + "; ".join(problems))
        return url

    # -- rules relating a variable to those declared before it -----------------------------
    @field_validator("redis_cluster")
    @classmethod
    def _cluster_needs_database_zero(cls, cluster: bool, info: ValidationInfo) -> bool:
        url = _valid_redis_url(info)
        if not cluster or url is False:
            return cluster
        if url is None:
            raise _worded(f"{Env.REDIS_CLUSTER}=true needs {Env.REDIS_URL}")
        parts = _split(url)
        if parts is not None and _database(parts) not in ("", "0"):
            raise _worded(
                f"{Env.REDIS_URL}: cluster mode has only database 0 ({Env.REDIS_CLUSTER}=true)"
            )
        return cluster

    @field_validator("redis_auth_secret_arn")
    @classmethod
    def _secret_arn(cls, arn: str | None, info: ValidationInfo) -> str | None:
        if arn is None:
            return None
        if not _SECRET_ARN_PATTERN.match(arn):
            raise ValueError(arn)
        url = _valid_redis_url(info)
        if url is None:
            raise _worded(f"{Env.REDIS_AUTH_SECRET_ARN} is set but {Env.REDIS_URL} is not")
        parts = _split(url) if url is not False else None
        if parts is not None and parts.password:
            raise _worded(
                f"{Env.REDIS_AUTH_SECRET_ARN} and a password in {Env.REDIS_URL} are "
                "exclusive: use one"
            )
        return arn

    @field_validator("redis_iam_user")
    @classmethod
    def _iam_user(cls, user: str | None, info: ValidationInfo) -> str | None:
        if user is None:
            return None
        if not _CACHE_USER_ID.fullmatch(user):
            raise ValueError(user)
        url = _valid_redis_url(info)
        if url is None:
            raise _worded(f"{Env.REDIS_IAM_USER} is set but {Env.REDIS_URL} is not")
        if url is False:
            return user
        parts = _split(url)
        if not url.startswith("rediss://"):
            # ElastiCache takes IAM tokens over TLS only (and they are bearer credentials).
            raise _worded(f"{Env.REDIS_IAM_USER} needs a rediss:// {Env.REDIS_URL} (TLS)")
        if parts is not None and parts.password:
            raise _worded(
                f"{Env.REDIS_IAM_USER} and a password in {Env.REDIS_URL} are exclusive: use one"
            )
        if info.data.get("redis_auth_secret_arn"):
            raise _worded(
                f"{Env.REDIS_IAM_USER} and {Env.REDIS_AUTH_SECRET_ARN} are exclusive: use one"
            )
        return user

    @field_validator("redis_iam_replication_group")
    @classmethod
    def _iam_replication_group(cls, group: str | None, info: ValidationInfo) -> str | None:
        if group is not None and not _REPLICATION_GROUP_ID.fullmatch(group):
            raise ValueError(group)
        if "redis_iam_user" not in info.data:
            return group  # REDIS_IAM_USER is invalid: its own problem is reported
        user = info.data["redis_iam_user"]
        if user is not None and group is None:
            raise _worded(f"{Env.REDIS_IAM_USER} needs {Env.REDIS_IAM_REPLICATION_GROUP}")
        if group is not None and user is None:
            raise _worded(f"{Env.REDIS_IAM_REPLICATION_GROUP} needs {Env.REDIS_IAM_USER}")
        return group

    @field_validator("aws_region")
    @classmethod
    def _region_where_aws_clients_use_it(
        cls, region: str | None, info: ValidationInfo
    ) -> str | None:
        # Only checked where it is used (Secrets Manager, IAM token signing): boto3's own
        # error for a malformed region is far from the variable; elsewhere any value is left
        # alone. IAM tokens have no ARN to take a region from.
        uses_secret = _valid_redis_url(info) and info.data.get("redis_auth_secret_arn")
        uses_iam = _valid_redis_url(info) and info.data.get("redis_iam_user")
        if region is None:
            if uses_iam:
                raise _worded(
                    f"{Env.AWS_REGION} is needed with {Env.REDIS_IAM_USER}: the region IAM "
                    "tokens are signed for"
                )
            return None
        if (uses_secret or uses_iam) and not _REGION_PATTERN.match(region):
            raise ValueError(region)
        return region

    @field_validator("redis_tls_ca_file")
    @classmethod
    def _ca_file(cls, ca_file: str | None, info: ValidationInfo) -> str | None:
        if ca_file is None:
            return None
        url = _valid_redis_url(info)
        if url is None:
            raise _worded(f"{Env.REDIS_TLS_CA_FILE} is set but {Env.REDIS_URL} is not")
        if url is False:
            return ca_file
        if not url.startswith("rediss://"):
            raise _worded(f"{Env.REDIS_TLS_CA_FILE} needs a rediss:// {Env.REDIS_URL}")
        if not os.path.isfile(ca_file):
            raise _worded(f"{Env.REDIS_TLS_CA_FILE}={ca_file!r}: no such file")
        # Loaded once here so a file that holds no certificate stops the app at start;
        # redis-py would only fail at each connect, leaving the cache silently off.
        try:
            ssl.create_default_context(cafile=ca_file)
        except (ssl.SSLError, OSError) as error:
            raise _worded(
                f"{Env.REDIS_TLS_CA_FILE}={ca_file!r}: not a readable PEM CA bundle ({error})"
            ) from None
        return ca_file


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Validate the environment (os.environ unless given) into frozen settings.

    Raises SettingsError naming every bad variable and what it allows.
    """
    given = _GIVEN_ENVIRON.set(environ)
    try:
        env = AppEnvironment()
    except ValidationError as error:
        texts = present(os.environ if environ is None else environ)
        raise SettingsError(_problems(error, texts)) from None
    finally:
        _GIVEN_ENVIRON.reset(given)
    return _settings(env)


def _settings(env: AppEnvironment) -> Settings:
    redis = None
    if env.redis_url is not None:
        iam = None
        if env.redis_iam_user and env.redis_iam_replication_group and env.aws_region:
            iam = IamAuth(env.redis_iam_user, env.redis_iam_replication_group, env.aws_region)
        redis = RedisSettings(
            url=env.redis_url,
            cluster=env.redis_cluster,
            tls=env.redis_url.startswith("rediss://"),
            auth_secret_arn=env.redis_auth_secret_arn,
            tls_ca_file=env.redis_tls_ca_file,
            timeout_seconds=env.redis_timeout_seconds,
            iam=iam,
        )
    aws_region = env.aws_region
    if aws_region is None and redis is not None and redis.auth_secret_arn:
        match = _SECRET_ARN_PATTERN.match(redis.auth_secret_arn)
        aws_region = match.group("region") if match else None
    return Settings(
        app_version=env.app_version,
        instance_id=env.instance_id,
        instance_name=env.instance_name,
        aws_region=aws_region,
        log_level=env.log_level,
        redis=redis,
        cache=CacheSettings(
            ttl_seconds=env.cache_ttl_seconds,
            ttl_jitter=env.cache_ttl_jitter,
            lock_timeout_seconds=env.cache_lock_timeout_seconds,
            near_cache_max_bytes=env.near_cache_max_bytes,
            breaker_failures=env.circuit_breaker_failures,
            breaker_reset_seconds=env.circuit_breaker_reset_seconds,
        ),
        server=ServerSettings(
            port=env.port,
            web_concurrency=env.web_concurrency,
            web_threads=env.web_threads,
            forwarded_allow_ips=env.forwarded_allow_ips,
            metrics_dir=env.prometheus_multiproc_dir,
        ),
        trusted_hosts=_hosts(env.trusted_hosts),
    )


def _problems(error: ValidationError, texts: Mapping[str, str]) -> list[str]:
    """One line per bad variable: the validator's own wording, else NAME=value: allowed."""
    lines: dict[str, str] = {}
    for problem in error.errors():
        name = str(problem["loc"][0])
        if name in lines:  # a union's members each report; the first says it
            continue
        if problem["type"] == _WORDED:
            lines[name] = str(problem["ctx"]["problem"])
        else:
            lines[name] = f"{name}={texts.get(name)!r}: must be {allowed(name)}"
    return list(lines.values())


@dataclass(frozen=True)
class Variable:
    """One variable as its declaration documents it (the README's table is made of these)."""

    name: str
    section: str
    default: str  # as shown to users: "unset", or what computes it
    allowed: str
    description: str


def variables() -> list[Variable]:
    """Every variable, in declaration order."""
    declared = []
    for field in AppEnvironment.model_fields.values():
        extra = cast(dict[str, str], field.json_schema_extra)
        declared.append(
            Variable(
                name=str(field.validation_alias),
                section=extra["section"],
                default=extra["default"],
                allowed=extra["allowed"],
                description=" ".join(str(field.description).split()),
            )
        )
    return declared


def allowed(name: str) -> str:
    """What variable `name` allows, as its declaration words it."""
    return next(variable.allowed for variable in variables() if variable.name == name)


def _valid_redis_url(info: ValidationInfo) -> str | Literal[False] | None:
    """REDIS_URL as validated so far: the URL, None when unset, False when it is invalid
    (then nothing is judged against it: its own problem is reported)."""
    if "redis_url" not in info.data:
        return False
    return cast(str | None, info.data["redis_url"])


def _hosts(text: str | None) -> tuple[str, ...]:
    """TRUSTED_HOSTS as a tuple: lower case, empty entries dropped."""
    if text is None:
        return ()
    return tuple(entry.strip().lower() for entry in text.split(",") if entry.strip())


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return None
    return parts


def _database(parts: SplitResult) -> str:
    return parts.path.lstrip("/")


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
