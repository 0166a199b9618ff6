"""The buffering proxy in front of gunicorn: HAProxy on every EC2 instance, and the request
rules the local HAProxy (pyscale/local/haproxy.py) applies too.

Why a proxy on the instance: gunicorn's gthread worker reads a request — headers and body —
on one of its threads, so a client that sends slowly holds that thread for as long as it
likes, and a few dozen such clients hold every thread of the fleet. The ALB does not
protect the targets from that: it streams a request body to the target as it arrives.
gunicorn's deployment docs say so for its default workers ("make sure that it buffers slow
clients ... Without this buffering Gunicorn will be easily susceptible to denial-of-service
attacks"), and Elastic Beanstalk's Python platform puts nginx in front of gunicorn on every
instance for it. HAProxy rather than nginx because the local topology already runs HAProxy,
so the very rules below are exercised by the local tests, and because `timeout
http-request` bounds the *whole* request (headers and buffered body), where nginx's
client_body_timeout only bounds the gap between two reads (a byte every 59 s passes).
Amazon Linux 2023 ships HAProxy since AL2023.1 (2.8, later 3.0; amazonlinux/amazon-linux-2023
issues #234, #843); the rules use nothing newer than HAProxy 2.6 (what the tests run), and the
boot script checks the file with `haproxy -c` before starting it. Measured in
bench/bench_slow_clients.py (results in bench/results/).

The rules, in HAProxy's words:
- a whole request, headers and body, within REQUEST_TIMEOUT_SECONDS, else 408;
- a body over app.contract.MAX_REQUEST_BODY_BYTES: 413 at once from its Content-Length, or
  once buffered for a chunked one;
- every body admitted is buffered whole (`option http-buffer-request`) before a connection
  to gunicorn is opened, so a gunicorn thread only ever waits on the app, never on a client;
- headers whose names hold an underscore are dropped (SCRIPT_NAME, PATH_INFO, REMOTE_USER:
  WSGI variables a client must not set; gunicorn drops them too, app/gunicorn.conf.py), and
  so are X-Forwarded-Ssl and X-Forwarded-Protocol, scheme headers no load balancer here
  sets (gunicorn trusts X-Forwarded-Proto only);
- /metrics answers 404 whatever its spelling (`//metrics`, `/%6detrics`): metrics are read
  from gunicorn directly, never through a load balancer;
- per gunicorn at most app.sizing.admitted_requests at a time (its workers x threads, less
  one); the rest wait in HAProxy's queue, and the spare thread is the health check's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from app.contract import HEALTH_PATH, MAX_REQUEST_BODY_BYTES, PORT_BEHIND_PROXY

# Headers and body of one request, in full. Generous for a real client (a request is a few
# hundred bytes); a slow-sending one is cut off with a 408 and never reaches gunicorn.
REQUEST_TIMEOUT_SECONDS: Final = 10
METRICS_PATH: Final = "metrics"
# Set in the proxy's environment by the boot script, from `python -m app.sizing` (what
# app.sizing.admitted_requests says for this instance's vCPUs): known only on the instance.
ADMITTED_REQUESTS_VARIABLE: Final = "PYSCALE_ADMITTED_REQUESTS"
INSTANCE_FRONTEND: Final = "app"
INSTANCE_BACKEND: Final = "gunicorn"
HEALTH_BACKEND: Final = "health"


def defaults_timeouts() -> list[str]:
    """`defaults` lines: the bound on a whole request."""
    return [
        # Headers and, with http-buffer-request, the body too (HAProxy's documentation).
        f"timeout http-request {REQUEST_TIMEOUT_SECONDS}s",
    ]


def frontend_request_rules() -> list[str]:
    """`frontend` lines every proxy in front of gunicorn applies, before any backend."""
    return [
        # Before the body is waited for (the frontend's rules run before the backend's
        # buffering): an announced oversized body is refused without reading it.
        f"http-request deny deny_status 413 if {{ req.hdr_val(content-length) gt "
        f"{MAX_REQUEST_BODY_BYTES} }}",
        # WSGI names as headers (SCRIPT_NAME, PATH_INFO, ...): any header with an underscore.
        "http-request del-header _ -m sub",
        "http-request del-header X-Forwarded-Ssl",
        "http-request del-header X-Forwarded-Protocol",
        # Decoded, with every leading and trailing slash trimmed: `//metrics`, `/%6detrics`
        # and `/%2Fmetrics/` all reach the app's /metrics view otherwise. (No regex: HAProxy's
        # PCRE JIT would need writable executable memory, which the unit denies.)
        f"http-request return status 404 content-type application/json "
        f'string \'{{"error":"not_found"}}\' '
        f"if {{ path,url_dec,ltrim(/),rtrim(/) -m str {METRICS_PATH} }}",
    ]


def backend_buffering() -> list[str]:
    """`backend` lines: the body buffered whole before gunicorn is contacted."""
    return [
        "option http-buffer-request",
        # A chunked body has no Content-Length to refuse up front: measured once buffered.
        f"http-request deny deny_status 413 if {{ req.body_size gt {MAX_REQUEST_BODY_BYTES} }}",
    ]


@dataclass(frozen=True)
class InstanceProxy:
    """The instance's HAProxy: the load balancer's port in front, gunicorn behind."""

    listen_port: int
    """The target group's port (app.contract.DEFAULT_PORT unless the stack says otherwise)."""
    trusted_forwarders: str
    """FORWARDED_ALLOW_IPS' format: who may set X-Forwarded-* (the load balancer's VPC)."""
    gunicorn_port: int = PORT_BEHIND_PROXY
    listen_address: str = ""
    """Every interface (the ALB comes over the VPC); tests bind loopback."""


def _source_networks(allowed: str) -> str:
    networks = [entry.strip() for entry in allowed.split(",") if entry.strip()]
    if "*" in networks:
        return "0.0.0.0/0 ::/0"
    return " ".join(networks)


def render_instance_config(proxy: InstanceProxy) -> str:
    """/etc/pyscale/proxy.cfg. The admitted requests come from the unit's environment
    (ADMITTED_REQUESTS_VARIABLE): HAProxy expands "${VAR}" in its configuration."""
    indent = "\n    "
    gunicorn = f"127.0.0.1:{proxy.gunicorn_port}"
    return f"""\
# Rendered by pyscale (infra/boot/proxy.py): the buffering proxy in front of gunicorn.
global
    maxconn 4096
    # One thread: on 2 vCPUs a second one cost HAProxy 2-4x the CPU per request (it
    # competes with gunicorn's workers for the same cores; bench/bench_slow_clients.py,
    # bench/results/2026-12-01), and one serves more requests per second than gunicorn
    # can on the stacks' 2-vCPU instance types. Raise it for types with many vCPUs.
    nbthread 1
    # Notices only (to the journal): not one line per request, gunicorn logs those.
    log stdout format raw daemon notice

defaults
    mode http
    log global
    option dontlognull
    timeout connect 1s
    # Longer than the ALB's idle timeout (60 s), so the ALB closes idle connections first.
    timeout client 75s
    timeout http-keep-alive 75s
    timeout server 60s
    # How long a request may wait for a free gunicorn slot.
    timeout queue 30s
    {indent.join(defaults_timeouts())}

frontend {INSTANCE_FRONTEND}
    bind {proxy.listen_address}:{proxy.listen_port}
    # The ALB sets these (and overwrites a client's X-Forwarded-Proto); nobody else may.
    acl from_load_balancer src {_source_networks(proxy.trusted_forwarders)}
    http-request del-header X-Forwarded-Proto unless from_load_balancer
    http-request del-header X-Forwarded-For unless from_load_balancer
    http-request del-header X-Forwarded-Port unless from_load_balancer
    {indent.join(frontend_request_rules())}
    # The ALB's health check gets a gunicorn slot of its own, never queued behind requests.
    use_backend {HEALTH_BACKEND} if {{ path {HEALTH_PATH} }}
    default_backend {INSTANCE_BACKEND}

backend {INSTANCE_BACKEND}
    {indent.join(backend_buffering())}
    # One local gunicorn, every request alike: any idle connection to it will do.
    http-reuse always
    server gunicorn {gunicorn} maxconn "${{{ADMITTED_REQUESTS_VARIABLE}}}"

backend {HEALTH_BACKEND}
    {indent.join(backend_buffering())}
    # The app answers only the names in TRUSTED_HOSTS; the ALB's check carries none of
    # them, so it is given loopback's, which is always trusted.
    http-request set-header Host 127.0.0.1
    server gunicorn {gunicorn} maxconn 1
"""
