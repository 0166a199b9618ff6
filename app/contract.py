"""The contract between the app and everything that runs it.

The load balancer (ALB on AWS, HAProxy on one machine), the EC2 boot script, the local
runner and the app itself all import these names; none of them spells the values again.
Swapping in your own WSGI app means honouring this module: answer HEALTH_PATH, listen on
the PORT variable, and read the variables below.
"""

from typing import Final

# Liveness only: the load balancer's health check. Never checks dependencies, so a Redis
# outage can't take every instance out of the target group at once.
HEALTH_PATH: Final = "/healthz"
# Readiness: 503 only while starting or draining; 200 (with details) when degraded.
READY_PATH: Final = "/readyz"

DEFAULT_PORT: Final = 8000
# On an EC2 instance DEFAULT_PORT (the target group's port) belongs to the buffering proxy in
# front of gunicorn (infra/boot/proxy.py); gunicorn listens behind it, on loopback only, here.
# Scrapers on the instance (metrics) talk to this port: the proxy answers 404 for /metrics.
PORT_BEHIND_PROXY: Final = 8001

# The largest request body a proxy in front of gunicorn admits (413 beyond). The reference
# app reads no body at all; 8 KiB is the body size AWS WAF's common rule set blocks beyond,
# and it fits in HAProxy's request buffer (16 KiB), so every admitted body is buffered whole
# before gunicorn sees the request.
MAX_REQUEST_BODY_BYTES: Final = 8 * 1024

# Prometheus metrics of the whole instance: scraped on the instance (the CloudWatch agent),
# answered 404 by the load balancer and the instance's proxy to anyone else.
METRICS_PATH: Final = "/metrics"

# What the app's ElastiCache user may do (IAM authentication, infra/cache.py): every key,
# every command but the @dangerous ones (KEYS, FLUSHALL, CONFIG, INFO, MONITOR, ...), which
# neither the app nor redis-py's standalone and cluster clients send.
CACHE_USER_ACCESS_STRING: Final = "on ~* +@all -@dangerous"

# Seconds gunicorn gives in-flight requests after SIGTERM. The ALB's deregistration delay
# and HAProxy's drain use the same figure, so no request is cut mid-flight.
GRACEFUL_TIMEOUT_SECONDS: Final = 30


class Env:
    """Names of the environment variables the app reads (values documented in app/settings.py)."""

    PORT: Final = "PORT"
    WEB_CONCURRENCY: Final = "WEB_CONCURRENCY"
    REDIS_URL: Final = "REDIS_URL"
    REDIS_CLUSTER: Final = "REDIS_CLUSTER"
    REDIS_AUTH_SECRET_ARN: Final = "REDIS_AUTH_SECRET_ARN"  # noqa: S105 (a name, not a secret)
    # IAM authentication: the ElastiCache user id and the replication group id its tokens
    # are signed for (app/elasticache_iam.py).
    REDIS_IAM_USER: Final = "REDIS_IAM_USER"
    REDIS_IAM_REPLICATION_GROUP: Final = "REDIS_IAM_REPLICATION_GROUP"
    CACHE_TTL_SECONDS: Final = "CACHE_TTL_SECONDS"
    APP_VERSION: Final = "APP_VERSION"
    INSTANCE_NAME: Final = "INSTANCE_NAME"
    AWS_REGION: Final = "AWS_REGION"
    FORWARDED_ALLOW_IPS: Final = "FORWARDED_ALLOW_IPS"
    PROMETHEUS_MULTIPROC_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"
    # EC2 instance id; the boot script sets it (from IMDSv2) so GET / never waits on IMDS.
    INSTANCE_ID: Final = "INSTANCE_ID"
    WEB_THREADS: Final = "WEB_THREADS"
    LOG_LEVEL: Final = "LOG_LEVEL"
    REDIS_TLS_CA_FILE: Final = "REDIS_TLS_CA_FILE"
    REDIS_TIMEOUT_SECONDS: Final = "REDIS_TIMEOUT_SECONDS"
    CACHE_TTL_JITTER: Final = "CACHE_TTL_JITTER"
    CACHE_LOCK_TIMEOUT_SECONDS: Final = "CACHE_LOCK_TIMEOUT_SECONDS"
    NEAR_CACHE_MAX_BYTES: Final = "NEAR_CACHE_MAX_BYTES"
    CIRCUIT_BREAKER_FAILURES: Final = "CIRCUIT_BREAKER_FAILURES"
    CIRCUIT_BREAKER_RESET_SECONDS: Final = "CIRCUIT_BREAKER_RESET_SECONDS"
    # Host names the app answers for (it builds redirects from the Host header).
    TRUSTED_HOSTS: Final = "TRUSTED_HOSTS"
