"""IAM authentication to ElastiCache: the SigV4 token, its cache and refresh, and the token
reaching AUTH on real redis-server ACL users (standalone and every cluster node).

ElastiCache checks the token's signature; redis-server can't. So each server here has an
ACL user whose password *is* the token the provider produces, and the `default` user
disabled: a connection gets in only if AUTH sent exactly that token for that user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from unittest import mock

import botocore.auth
import botocore.session
import pytest
import redis
from botocore.credentials import Credentials
from botocore.model import ServiceId
from botocore.signers import RequestSigner
from redis.cluster import RedisCluster

from app.contract import Env
from app.elasticache_iam import (
    REFRESH_MARGIN_SECONDS,
    TOKEN_LIFETIME_SECONDS,
    ElastiCacheIamCredentialProvider,
    generate_auth_token,
)
from app.redis_client import build_client
from app.settings import RedisSettings
from tests.app.conftest import build_app
from tests.support.servers import RedisServer, start_redis_cluster, start_tls_redis

USER = "pyscale-prod-app"
GROUP = "pyscale-prod-cache"
REGION = "us-east-1"
CREDENTIALS = Credentials(
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example"
)
SIGNED_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ADMIN_PASSWORD = "admin-password-for-the-test-only"


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def provider(clock: FixedClock, group: str = GROUP) -> ElastiCacheIamCredentialProvider:
    return ElastiCacheIamCredentialProvider(
        user_id=USER, replication_group_id=group, region=REGION, credentials=CREDENTIALS,
        clock=clock,
    )  # fmt: skip


def token_at(when: datetime) -> str:
    return generate_auth_token(
        user_id=USER,
        replication_group_id=GROUP,
        region=REGION,
        credentials=CREDENTIALS.get_frozen_credentials(),
        signed_at=when,
    )


# -- the token ---------------------------------------------------------------------------
def test_the_token_is_a_presigned_elasticache_connect_request_for_the_group_and_user():
    token = token_at(SIGNED_AT)

    # Computed once with botocore's RequestSigner.generate_presigned_url (the path AWS's
    # examples take) at 2026-03-01T12:00:00Z with these example credentials.
    assert token == (
        "pyscale-prod-cache/?Action=connect&User=pyscale-prod-app"
        "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20260301%2Fus-east-1%2Felasticache%2Faws4_request"
        "&X-Amz-Date=20260301T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
        "&X-Amz-Security-Token=session-token-example"
        "&X-Amz-Signature=22d8b51ad906aa630be79145c50f22eea6827ef78296c87f120dd749aba1d87b"
    )


def test_the_token_is_what_botocores_presigner_makes_at_the_same_instant():
    other = datetime(2026, 7, 14, 23, 59, 30, tzinfo=UTC)
    signer = RequestSigner(
        ServiceId("elasticache"), REGION, "elasticache", "v4", CREDENTIALS,
        botocore.session.get_session().get_component("event_emitter"),
    )  # fmt: skip
    with mock.patch.object(
        botocore.auth, "get_current_datetime", return_value=other.replace(tzinfo=None)
    ):
        presigned = signer.generate_presigned_url(
            {
                "method": "GET",
                "url": f"http://{GROUP}/?Action=connect&User={USER}",
                "body": {},
                "headers": {},
                "context": {},
            },
            operation_name="connect",
            expires_in=TOKEN_LIFETIME_SECONDS,
            region_name=REGION,
        )

    assert token_at(other) == presigned.removeprefix("http://")
    assert token_at(other) != token_at(SIGNED_AT)


def test_the_provider_reuses_its_token_until_the_refresh_margin_then_signs_anew():
    clock = FixedClock(SIGNED_AT)
    iam = provider(clock)

    first = iam.get_credentials()
    clock.advance(TOKEN_LIFETIME_SECONDS - REFRESH_MARGIN_SECONDS - 1)
    still = iam.get_credentials()
    clock.advance(1)
    renewed = iam.get_credentials()

    assert first == (USER, token_at(SIGNED_AT))
    assert still == first
    refreshed_at = SIGNED_AT + timedelta(seconds=TOKEN_LIFETIME_SECONDS - REFRESH_MARGIN_SECONDS)
    assert renewed == (USER, token_at(refreshed_at))
    assert "X-Amz-Date=20260301T121200Z" in renewed[1]


def test_without_credentials_the_provider_says_where_they_should_come_from(monkeypatch):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    iam = ElastiCacheIamCredentialProvider(user_id=USER, replication_group_id=GROUP, region=REGION)

    with pytest.raises(RuntimeError, match=r"no AWS credentials found.*instance profile"):
        iam.get_credentials()


# -- the token reaching AUTH on real servers ----------------------------------------------
def admin(server: RedisServer) -> redis.Redis:
    tls = {"ssl": True, "ssl_ca_certs": str(server.tls.ca_file)} if server.tls else {}
    return redis.Redis(
        host="127.0.0.1", port=server.port, username="admin", password=ADMIN_PASSWORD,
        socket_timeout=5, **tls,
    )  # fmt: skip


def lock_down(server: RedisServer) -> None:
    """An admin user for the test, and no way in without a user's password."""
    with contextlib.closing(server.client(socket_timeout=5)) as client:
        client.acl_setuser("admin", enabled=True, passwords=[f"+{ADMIN_PASSWORD}"],
                           keys=["*"], channels=["*"], commands=["+@all"])  # fmt: skip
    with contextlib.closing(admin(server)) as client:
        client.acl_setuser("default", enabled=False)


def accept_only(server: RedisServer, token: str) -> None:
    """The app's user, whose one password is `token`; its open connections are cut, as
    ElastiCache cuts IAM connections after 12 hours."""
    with contextlib.closing(admin(server)) as client:
        client.acl_setuser(USER, enabled=True, reset_passwords=True, passwords=[f"+{token}"],
                           keys=["*"], commands=["+@all"])  # fmt: skip
        client.execute_command("CLIENT", "KILL", "USER", USER)


def redis_settings(url: str, cluster: bool = False) -> RedisSettings:
    return RedisSettings(
        url=url, cluster=cluster, tls=False, auth_secret_arn=None, tls_ca_file=None,
        timeout_seconds=2.0,
    )  # fmt: skip


@pytest.fixture
def locked_redis(redis_server) -> RedisServer:
    lock_down(redis_server)
    return redis_server


def test_the_client_authenticates_as_the_user_with_the_providers_token(locked_redis):
    clock = FixedClock(SIGNED_AT)
    accept_only(locked_redis, token_at(SIGNED_AT))
    client = build_client(
        redis_settings(f"redis://127.0.0.1:{locked_redis.port}"),
        credential_provider=provider(clock),
    )

    assert client.set("k", "v")
    assert client.acl_whoami() == USER


def test_a_token_for_another_replication_group_is_refused(locked_redis):
    accept_only(locked_redis, token_at(SIGNED_AT))
    client = build_client(
        redis_settings(f"redis://127.0.0.1:{locked_redis.port}"),
        credential_provider=provider(FixedClock(SIGNED_AT), group="another-cache"),
    )

    with pytest.raises(redis.AuthenticationError):
        client.ping()


def test_after_the_token_expires_reconnects_authenticate_with_a_fresh_one(locked_redis):
    clock = FixedClock(SIGNED_AT)
    accept_only(locked_redis, token_at(SIGNED_AT))
    client = build_client(
        redis_settings(f"redis://127.0.0.1:{locked_redis.port}"),
        credential_provider=provider(clock),
    )
    assert client.set("k", "before")

    clock.advance(TOKEN_LIFETIME_SECONDS + 60)
    accept_only(locked_redis, token_at(clock.now))  # the old token no longer opens anything

    assert client.get("k") == b"before"  # the pooled connection was cut: it reconnected
    assert client.acl_whoami() == USER


@pytest.fixture(scope="module")
def locked_cluster(tmp_path_factory) -> Iterator[list[RedisServer]]:
    cluster = start_redis_cluster(tmp_path_factory.mktemp("iam-cluster"))
    for node in cluster.nodes:
        lock_down(node)
    yield cluster.nodes
    cluster.stop()


def node_users(node: RedisServer) -> list[str]:
    with contextlib.closing(admin(node)) as client:
        return [entry["user"] for entry in client.client_list()]


def test_every_cluster_node_connection_authenticates_with_the_token_and_refreshes(
    locked_cluster,
):
    clock = FixedClock(SIGNED_AT)
    for node in locked_cluster:
        accept_only(node, token_at(SIGNED_AT))
    url = f"redis://127.0.0.1:{locked_cluster[0].port}"
    client = build_client(redis_settings(url, cluster=True), credential_provider=provider(clock))
    assert isinstance(client, RedisCluster)
    keys = [f"key-{index}" for index in range(60)]  # spread over every master's slots

    for key in keys:
        client.set(key, key)
    assert all(USER in node_users(node) for node in locked_cluster)

    clock.advance(TOKEN_LIFETIME_SECONDS + 60)
    for node in locked_cluster:
        accept_only(node, token_at(clock.now))

    assert [client.get(key) for key in keys] == [key.encode() for key in keys]
    assert all(USER in node_users(node) for node in locked_cluster)


# -- the app, configured by its environment as the boot script configures it --------------
@pytest.fixture
def locked_tls_redis(tmp_path) -> Iterator[RedisServer]:
    """TLS only, as ElastiCache takes IAM tokens; no way in without a user's password."""
    server = start_tls_redis(tmp_path / "redis-tls")
    lock_down(server)
    yield server
    server.stop()


def test_the_app_configured_for_iam_connects_as_its_user_with_its_own_signed_token(
    locked_tls_redis, monkeypatch
):
    # The default credential chain finds these first (no instance metadata is asked).
    for name, value in (
        ("AWS_ACCESS_KEY_ID", CREDENTIALS.access_key),
        ("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secret_key),
        ("AWS_SESSION_TOKEN", CREDENTIALS.token),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ):
        monkeypatch.setenv(name, value)
    app = build_app(
        {
            Env.REDIS_URL: f"rediss://127.0.0.1:{locked_tls_redis.port}",
            Env.REDIS_TLS_CA_FILE: str(locked_tls_redis.tls.ca_file),
            Env.REDIS_IAM_USER: USER,
            Env.REDIS_IAM_REPLICATION_GROUP: GROUP,
            Env.AWS_REGION: REGION,
        }
    )
    pool = app.extensions["pyscale"].cache._redis().connection_pool
    iam = pool.connection_kwargs["credential_provider"]
    # The server accepts exactly the token this provider signs now for this user and group.
    user, token = iam.get_credentials()
    assert (user, iam.replication_group_id, iam.region) == (USER, GROUP, REGION)
    assert token.startswith(f"{GROUP}/?Action=connect&User={USER}&X-Amz-Algorithm=AWS4-HMAC-SHA256")
    accept_only(locked_tls_redis, token)

    response = app.test_client().get("/api/report/7")

    assert response.status_code == 200
    assert response.headers["X-Cache"] == "miss"  # computed and stored in Redis, not bypassed
    with contextlib.closing(admin(locked_tls_redis)) as client:
        assert client.keys("pyscale:*")
        assert USER in [entry["user"] for entry in client.client_list()]
