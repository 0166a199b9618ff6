"""Short-lived IAM authentication tokens for ElastiCache (Valkey 7.2+, Redis OSS 7+).

With IAM authentication the cache has no password: the app signs, with its instance role's
credentials, a SigV4 presigned request for ``elasticache:Connect`` and sends that as the
password of ``AUTH <user> <token>`` (AWS ElastiCache user guide, "Authenticating with
IAM"). The request is ``GET http://<replication group id>/?Action=connect&User=<user id>``,
service ``elasticache``, valid 15 minutes; the token is the signed URL without its scheme.

``ElastiCacheIamCredentialProvider`` is a redis-py ``CredentialProvider``: redis-py asks it
for credentials each time it opens a connection, so every node connection of a cluster-mode
client, and every reconnect (ElastiCache closes IAM-authenticated connections after 12
hours), authenticates with a fresh enough token. Tokens are cached and regenerated
``REFRESH_MARGIN_SECONDS`` before they expire, so a connection opened just before expiry
never sends a token that lapses in flight, and signing (a few HMACs) is not done per
connection.

Signing is botocore's own SigV4 query signer (what ``generate_presigned_url`` uses); only
the instant it signs at comes from the provider's clock, so token age and signing time can
never disagree and a test can fix both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote

from botocore.auth import SIGV4_TIMESTAMP, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from redis.credentials import CredentialProvider

SIGNING_SERVICE: Final = "elasticache"
# AWS: "IAM authentication tokens are valid for 15 minutes."
TOKEN_LIFETIME_SECONDS: Final = 900
# A token is replaced once less than this is left of its 15 minutes.
REFRESH_MARGIN_SECONDS: Final = 180

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _SigV4QueryAuthAt(SigV4QueryAuth):
    """botocore's presigner, signing at a given instant instead of reading the wall clock.

    SigV4Auth.add_auth reads the clock itself and then runs these same steps; everything
    but the timestamp is botocore's code."""

    def __init__(self, credentials: ReadOnlyCredentials, region: str, signed_at: datetime):
        super().__init__(credentials, SIGNING_SERVICE, region, expires=TOKEN_LIFETIME_SECONDS)
        self._signed_at = signed_at

    def add_auth(self, request: AWSRequest) -> None:
        # The two private steps are botocore's own (SigV4QueryAuth); botocore-stubs omit them.
        request.context["timestamp"] = self._signed_at.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)  # type: ignore[attr-defined]
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)  # type: ignore[attr-defined]


def generate_auth_token(
    *,
    user_id: str,
    replication_group_id: str,
    region: str,
    credentials: ReadOnlyCredentials,
    signed_at: datetime,
) -> str:
    """The IAM auth token for ``AUTH user_id <token>``, valid 15 minutes from ``signed_at``."""
    url = f"http://{replication_group_id}/?Action=connect&User={quote(user_id, safe='')}"
    request = AWSRequest(method="GET", url=url)
    _SigV4QueryAuthAt(credentials, region, signed_at.astimezone(UTC)).add_auth(request)
    signed_url = request.url
    assert signed_url is not None  # built with one above
    return signed_url.removeprefix("http://")


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: datetime


class ElastiCacheIamCredentialProvider(CredentialProvider):
    """(user id, IAM token) for redis-py, regenerated before each token expires.

    ``credentials``: botocore credentials; the default chain (the instance role on EC2,
    refreshed by botocore before it expires) when None. ``clock``: an aware UTC datetime.
    Thread-safe: gthread workers open connections from many threads.
    """

    def __init__(
        self,
        *,
        user_id: str,
        replication_group_id: str,
        region: str,
        credentials: Credentials | None = None,
        clock: Clock = _utc_now,
    ) -> None:
        self.user_id = user_id
        self.replication_group_id = replication_group_id
        self.region = region
        self._credentials = credentials
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def get_credentials(self) -> tuple[str, str]:
        with self._lock:
            now = self._clock()
            margin = timedelta(seconds=REFRESH_MARGIN_SECONDS)
            if self._token is None or now >= self._token.expires_at - margin:
                self._token = _Token(
                    generate_auth_token(
                        user_id=self.user_id,
                        replication_group_id=self.replication_group_id,
                        region=self.region,
                        credentials=self._frozen_credentials(),
                        signed_at=now,
                    ),
                    now + timedelta(seconds=TOKEN_LIFETIME_SECONDS),
                )
            return self.user_id, self._token.value

    async def get_credentials_async(self) -> tuple[str, str]:
        return self.get_credentials()

    def _frozen_credentials(self) -> ReadOnlyCredentials:
        if self._credentials is None:
            # Imported lazily, as in app/redis_client.py: only IAM-authenticated apps pay.
            import botocore.session

            self._credentials = botocore.session.get_session().get_credentials()
            if self._credentials is None:
                raise RuntimeError(
                    "no AWS credentials found to sign ElastiCache IAM auth tokens "
                    "(on EC2: the instance profile)"
                )
        # Refreshable credentials (an instance role) renew themselves here when due.
        return self._credentials.get_frozen_credentials()
