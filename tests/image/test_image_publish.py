"""The deploy's image step for eks stacks (pyscale/image_publish.py): the manifest list must
hold both architectures and the nodes' one; a commit already in ECR is reused, never pushed
over (immutable tags) — the rollback path; a missing repository is the first deploy. ECR is
botocore's Stubber, which checks every request and answer against the service model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pyscale import image_publish
from pyscale.image_publish import (
    PublishError,
    Registry,
    check_index,
    index_platforms,
    publish,
    required_architectures,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pyscale-dev-eks-app"
COMMIT = "3d3c42e5aac5ba805825da76410c181273ba90b1"
ACCEPTED = [*image_publish.INDEX_MEDIA_TYPES, *image_publish.IMAGE_MEDIA_TYPES]


def descriptor(architecture: str, os: str = "linux") -> dict[str, Any]:
    digest = hashlib.sha256(architecture.encode()).hexdigest()
    return {
        "mediaType": OCI_MANIFEST,
        "digest": f"sha256:{digest}",
        "size": 1234,
        "platform": {"architecture": architecture, "os": os},
    }


def index(*entries: dict[str, Any]) -> str:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)})


BOTH = index(descriptor("amd64"), descriptor("arm64"))
DIGEST = "sha256:" + hashlib.sha256(BOTH.encode()).hexdigest()


# -- manifest lists ---------------------------------------------------------------------------
def test_a_manifest_lists_platforms_leave_out_attestations():
    with_attestation = index(
        descriptor("amd64"), descriptor("arm64"), descriptor("unknown", os="unknown")
    )
    assert index_platforms(with_attestation) == {"linux/amd64", "linux/arm64"}


def test_an_image_without_the_nodes_architecture_is_refused_naming_the_key():
    amd64_only = index(descriptor("amd64"))
    with pytest.raises(PublishError) as refused:
        check_index(amd64_only, {"arm64": "pyscale:instanceType t4g.medium"}, "the image")
    assert str(refused.value) == (
        "the image has linux/amd64 but not linux/arm64 (pyscale:instanceType t4g.medium)"
    )


def test_a_single_platform_image_is_not_a_manifest_list():
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})
    with pytest.raises(PublishError, match="not a multi-platform manifest list"):
        index_platforms(manifest)


def test_dev_eks_needs_both_architectures_and_arm64_for_its_graviton_nodes():
    assert required_architectures("dev-eks") == {
        "amd64": "built for every stack",
        "arm64": "pyscale:instanceType t4g.medium",
    }


# -- publishing against ECR -------------------------------------------------------------------
class NoContainerTool:
    """Guard: these paths must not load, push or log in."""

    def login(self, registry: str, password: str) -> None:
        raise AssertionError("logged in")

    def push_archive(self, archive: Path, architecture: str, reference: str) -> None:
        raise AssertionError(f"pushed {reference}")

    def create_index(self, reference: str, sources: Sequence[str]) -> None:
        raise AssertionError(f"created {reference}")


@pytest.fixture
def ecr(monkeypatch) -> Iterator[tuple[Any, Stubber]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("ecr", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def repository_found(stubber: Stubber) -> None:
    stubber.add_response(
        "describe_repositories",
        {"repositories": [{"repositoryName": "pyscale-dev-eks-app", "repositoryUri": URI}]},
        {"repositoryNames": ["pyscale-dev-eks-app"]},
    )


def image_under_tag(stubber: Stubber, manifest: str, digest: str = DIGEST) -> None:
    stubber.add_response(
        "batch_get_image",
        {
            "images": [
                {
                    "repositoryName": "pyscale-dev-eks-app",
                    "imageId": {"imageDigest": digest, "imageTag": COMMIT},
                    "imageManifest": manifest,
                }
            ],
            "failures": [],
        },
        {
            "repositoryName": "pyscale-dev-eks-app",
            "imageIds": [{"imageTag": COMMIT}],
            "acceptedMediaTypes": ACCEPTED,
        },
    )


def test_the_first_deploy_finds_no_repository_and_says_so(ecr, tmp_path):
    client, stubber = ecr
    stubber.add_client_error(
        "describe_repositories", "RepositoryNotFoundException", "no such repository"
    )
    published = publish("dev-eks", COMMIT, tmp_path, Registry(client), NoContainerTool())
    assert published.outputs() == ["repository=missing", "image=", "reused=false"]


def test_a_commit_already_pushed_is_reused_by_digest_not_rebuilt(ecr, tmp_path):
    # A re-run, or a redeploy of an older commit (the rollback): the same bytes again.
    client, stubber = ecr
    repository_found(stubber)
    image_under_tag(stubber, BOTH)
    published = publish("dev-eks", COMMIT, tmp_path, Registry(client), NoContainerTool())
    assert published.outputs() == ["repository=exists", f"image={URI}@{DIGEST}", "reused=true"]


def test_a_reused_image_missing_the_nodes_architecture_never_reaches_the_stack(ecr, tmp_path):
    client, stubber = ecr
    repository_found(stubber)
    image_under_tag(stubber, index(descriptor("amd64")))
    with pytest.raises(PublishError, match=r"but not linux/arm64 \(pyscale:instanceType"):
        publish("dev-eks", COMMIT, tmp_path, Registry(client), NoContainerTool())


def test_a_new_commit_without_both_build_archives_stops_before_logging_in(ecr, tmp_path):
    client, stubber = ecr
    repository_found(stubber)
    stubber.add_response(
        "batch_get_image",
        {"images": [], "failures": [{"failureCode": "ImageNotFound", "failureReason": "none"}]},
        {
            "repositoryName": "pyscale-dev-eks-app",
            "imageIds": [{"imageTag": COMMIT}],
            "acceptedMediaTypes": ACCEPTED,
        },
    )
    (tmp_path / image_publish.archive_name("amd64")).write_bytes(b"")
    with pytest.raises(PublishError, match="no image archive for arm64"):
        publish("dev-eks", COMMIT, tmp_path, Registry(client), NoContainerTool())


def test_the_login_password_is_the_tokens_secret_half(ecr):
    client, stubber = ecr
    stubber.add_response(
        "get_authorization_token",
        {"authorizationData": [{"authorizationToken": "QVdTOnNlY3JldA==", "proxyEndpoint": URI}]},
        {},
    )
    assert Registry(client).login_password() == "secret"  # base64 of "AWS:secret"


# -- the command line (the Makefile's image-* targets) ----------------------------------------
def test_the_platform_line_is_for_github_output(capsys):
    assert image_publish.main(["platform", "--stack", "dev-eks"]) == 0
    assert capsys.readouterr().out == "platform=eks\n"


def test_an_unknown_stack_is_one_line_and_exit_2(capsys):
    assert image_publish.main(["platform", "--stack", "nope"]) == 2
    assert capsys.readouterr().err.startswith("pyscale image: unknown stack 'nope'")


def test_using_no_image_is_refused_rather_than_deploying_without_the_app(capsys):
    assert image_publish.main(["use", "--stack-ref", "org/pyscale/dev-eks", "--image", ""]) == 2
    assert "no image to use" in capsys.readouterr().err
