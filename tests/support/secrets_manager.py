"""A stand-in for AWS Secrets Manager on a free loopback port (AWS is the one thing faked).

It speaks the service's JSON protocol for GetSecretValue, so the real boto3 client in a real
gunicorn master talks to it once pointed there by environment variables:

    with fake_secrets_manager({ARN: '{"auth_token": "s3cret"}'}) as secrets:
        start_gunicorn(tmp_path, {**secrets.boto_env(), "REDIS_AUTH_SECRET_ARN": ARN})
        assert secrets.calls == 1

An ARN it doesn't hold is answered as AWS answers it (ResourceNotFoundException). With
`tls=TlsFiles` it speaks HTTPS, as the real endpoint does, and boto_env() trusts its CA.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.servers import LOOPBACK, TlsFiles


@dataclass
class FakeSecretsManager:
    secrets: Mapping[str, str]
    port: int = 0
    requested: list[str] = field(default_factory=list)
    tls: TlsFiles | None = None

    @property
    def calls(self) -> int:
        return len(self.requested)

    def boto_env(self) -> dict[str, str]:
        """Environment that sends boto3's Secrets Manager calls here and nowhere else."""
        scheme = "https" if self.tls else "http"
        return {
            **({"AWS_CA_BUNDLE": str(self.tls.ca_file)} if self.tls else {}),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": f"{scheme}://{LOOPBACK}:{self.port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask the metadata address
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }


@contextlib.contextmanager
def fake_secrets_manager(
    secrets: Mapping[str, str], tls: TlsFiles | None = None
) -> Iterator[FakeSecretsManager]:
    fake = FakeSecretsManager(dict(secrets), tls=tls)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            target = self.headers.get("X-Amz-Target", "")
            secret_id = json.loads(body or b"{}").get("SecretId", "")
            if target != "secretsmanager.GetSecretValue":
                self._answer(400, {"__type": "InvalidRequestException", "message": target})
                return
            fake.requested.append(secret_id)
            if secret_id not in fake.secrets:
                error = {"__type": "ResourceNotFoundException", "message": "no such secret"}
                self._answer(400, error)
                return
            self._answer(
                200, {"ARN": secret_id, "Name": "s", "SecretString": fake.secrets[secret_id]}
            )

        def _answer(self, status: int, document: dict) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="fake-secrets-manager")
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
