"""A redis-py client for each supported topology, tuned to fail fast.

- standalone, or an ElastiCache replication group's primary endpoint: redis.Redis
- cluster mode enabled (REDIS_CLUSTER=true, REDIS_URL = configuration endpoint): RedisCluster
- TLS (rediss://) with an AUTH token in the URL or in Secrets Manager (REDIS_AUTH_SECRET_ARN),
  or with IAM authentication: a redis-py credential provider (app/elasticache_iam.py) that
  hands every new connection, on every node, a short-lived SigV4 token

Retries are off and timeouts are short on purpose: the cache is an optimisation, so an
outage must cost a request at most one short timeout, and the circuit breaker in
app/cache.py (not redis-py's retry loop) decides when to try again.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, TypeAlias

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.credentials import CredentialProvider
from redis.retry import Retry

from app.settings import RedisSettings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

RedisClient: TypeAlias = redis.Redis | RedisCluster

_secret_lock = threading.Lock()
_secret_cache: dict[str, str] = {}


def fetch_auth_token(
    secret_arn: str, region: str | None, secrets_client: SecretsManagerClient | None = None
) -> str:
    """The AUTH token stored in Secrets Manager, fetched once per process tree.

    gunicorn.conf.py calls this in the master before forking, so workers inherit the cached
    token and an instance asks Secrets Manager once at start, not once per worker. The
    secret may hold the bare token or JSON with an `auth_token`, `token` or `password` key.
    """
    with _secret_lock:
        if secret_arn in _secret_cache:
            return _secret_cache[secret_arn]
        if secrets_client is None:
            import boto3  # imported lazily: only instances that use Secrets Manager pay for it

            secrets_client = boto3.client("secretsmanager", region_name=region)
        text = secrets_client.get_secret_value(SecretId=secret_arn).get("SecretString")
        if not text:
            raise ValueError(f"secret {secret_arn} has no SecretString (a binary secret?)")
        token = text
        if text.lstrip().startswith("{"):
            document = json.loads(text)
            for key in ("auth_token", "token", "password"):
                value = document.get(key)
                if isinstance(value, str):
                    token = value
                    break
            else:
                raise ValueError(
                    f"secret {secret_arn} is JSON without an auth_token, token or password key"
                )
        _secret_cache[secret_arn] = token
        return token


def build_client(
    settings: RedisSettings,
    password: str | None = None,
    credential_provider: CredentialProvider | None = None,
) -> RedisClient:
    """A client for settings.url. RedisCluster connects while being built, so call this lazily.

    ``credential_provider`` (exclusive with a password) is asked for (user, password) each
    time a connection opens; the cluster client passes it to every node's connections."""
    options: dict[str, Any] = {
        "socket_timeout": settings.timeout_seconds,
        "socket_connect_timeout": settings.timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
        "client_name": "pyscale-app",
    }
    if password is not None:
        options["password"] = password
    if credential_provider is not None:
        options["credential_provider"] = credential_provider
    if settings.tls and settings.tls_ca_file:
        options["ssl_ca_certs"] = settings.tls_ca_file
    if settings.cluster:
        # `retry` (no retries) also governs the cluster client; MOVED/ASK redirections are
        # still followed, since they are not errors.
        return RedisCluster.from_url(settings.url, **options)
    return redis.Redis.from_url(settings.url, **options)
