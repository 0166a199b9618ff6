"""The deploy workflow's image steps for an eks stack: the commit's image, pushed to the
stack's ECR repository as one manifest list for both CPU architectures, and its digest
handed to `pulumi up` — so every deploy names exactly the bits it runs, and redeploying an
older commit rolls the Deployment back to that commit's image.

    python -m pyscale.image_publish platform --stack dev-eks
    python -m pyscale.image_publish check-base --image <base>@sha256:… --arch arm64
    python -m pyscale.image_publish publish --stack dev-eks --tag <commit> --archives build/images
    python -m pyscale.image_publish use --stack-ref org/pyscale/dev-eks --image <repo>@sha256:…
    python -m pyscale.image_publish keep-deployed --stack-ref org/pyscale/dev-eks

How (.github/workflows/deploy.yml runs these through the Makefile):
- Each architecture is built natively on its own runner (ubuntu-24.04 for amd64,
  ubuntu-24.04-arm for arm64: no emulation, no third-party action) into a ``docker save``
  archive, with no cloud credentials at all; the deploy job, the only one holding the deploy
  role, loads both and pushes them.
- ECR tags are immutable (ImageRepository). Each architecture's image is tagged
  ``<commit>-<arch>`` and the manifest list ``<commit>``: tagged, so the lifecycle's
  untagged-expiry rule never selects a manifest the list still refers to.
- A commit whose ``<commit>`` tag exists is not pushed again: its digest is reused. A
  re-run, or a redeploy of an older commit, deploys the very bytes that commit first
  shipped (a rebuild would differ: timestamps) — that is the rollback.
- The manifest list is read back from ECR and must list linux/amd64 and linux/arm64, and
  the architectures of the stack's node groups (``instanceType``, ``eksSpotInstanceTypes``),
  before its digest reaches the stack.
- First deploy: the program creates the repository, so it does not exist yet. ``publish``
  then prints ``repository=missing`` and the workflow runs one ``pulumi up`` without an
  app image (the cluster, the repository, no Deployment: the program's documented
  empty-``appImage`` shape), then publishes, then deploys the app. README "Deploy to EKS"
  says why not ``pulumi up --target``.
- ``use`` writes ``pyscale:appImage`` into this checkout's stack file (``pulumi config
  set``): the CI workspace only, never committed, so the file in git never pins an image
  that the next deploy or a preview would roll back to. ``keep-deployed`` does the same
  with the image the stack runs now (its ``appImage`` output), for a pull request's
  preview: it shows the change under review, not a rollout of some other image.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from infra import instance_types
from infra.kubernetes.image_repository import repository_name
from infra.settings import load_settings
from infra.settings.loading import ConfigError
from infra.settings.platform import Platform
from pyscale import stacks

# OCI architecture (what a manifest list's ``platform.architecture`` says) per EC2
# architecture (what an instance type's ``ProcessorInfo`` says).
OCI_ARCHITECTURES: Final = {"arm64": "arm64", "x86_64": "amd64"}
# Every image is built for both, whatever the stack's nodes run today: an instanceType
# change to the other CPU must not need a new image.
BUILT_ARCHITECTURES: Final = ("amd64", "arm64")
IMAGE_KEY: Final = "pyscale:appImage"
OUTPUT_NAME: Final = "appImage"
INDEX_MEDIA_TYPES: Final = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
# Asked for too, so that a single-platform image under the tag is read (and refused by
# check_index, naming it) rather than reported as absent and pushed over.
IMAGE_MEDIA_TYPES: Final = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


class PublishError(Exception):
    """The image cannot be published or used (one line: what, and what to do)."""


# ---------------------------------------------------------------------------------------
# Manifest lists
# ---------------------------------------------------------------------------------------
def index_platforms(manifest: str | bytes) -> set[str]:
    """``os/architecture`` of every image in a manifest list (OCI index or Docker list);
    attestation entries (``unknown/unknown``) are not platforms."""
    try:
        document = json.loads(manifest)
    except ValueError as error:
        raise PublishError(f"the manifest is not JSON: {error}") from None
    media_type = document.get("mediaType")
    if media_type not in INDEX_MEDIA_TYPES or "manifests" not in document:
        raise PublishError(
            f"not a multi-platform manifest list (mediaType {media_type!r}): a single-platform "
            "image runs on one CPU only"
        )
    found = set()
    for entry in document["manifests"]:
        platform = entry.get("platform") or {}
        pair = f"{platform.get('os', 'unknown')}/{platform.get('architecture', 'unknown')}"
        if pair != "unknown/unknown":
            found.add(pair)
    return found


def check_index(manifest: str | bytes, needed: Mapping[str, str], what: str) -> None:
    """PublishError naming each architecture of ``needed`` (OCI arch -> why it is needed)
    that ``manifest`` lacks."""
    platforms = index_platforms(manifest)
    missing = [
        f"linux/{arch} ({why})"
        for arch, why in sorted(needed.items())
        if f"linux/{arch}" not in platforms
    ]
    if missing:
        raise PublishError(
            f"{what} has {', '.join(sorted(platforms)) or 'no platform'} "
            f"but not {', '.join(missing)}"
        )


def node_architectures(stack: str) -> dict[str, str]:
    """OCI architecture -> the stack key whose node group runs it."""
    try:
        settings = load_settings(stacks.engine_config(stack), stack, stacks.project_name())
    except ConfigError as error:
        raise PublishError(str(error)) from None
    needed: dict[str, str] = {}
    keyed = [("instanceType", settings.fleet.instance_type)] + [
        ("eksSpotInstanceTypes", name) for name in settings.platform.eks_spot_instance_types
    ]
    for key, name in keyed:
        architecture = instance_types.lookup(name).architecture
        if architecture in OCI_ARCHITECTURES:
            needed.setdefault(OCI_ARCHITECTURES[architecture], f"pyscale:{key} {name}")
    return needed


def required_architectures(stack: str) -> dict[str, str]:
    """What the stack's manifest list must hold: both built architectures, and the nodes'."""
    needed = {arch: "built for every stack" for arch in BUILT_ARCHITECTURES}
    needed.update(node_architectures(stack))
    return needed


# ---------------------------------------------------------------------------------------
# The registry (ECR through boto3) and the container tool (docker)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Repository:
    name: str
    uri: str  # <account>.dkr.ecr.<region>.amazonaws.com/<name>

    @property
    def registry(self) -> str:
        return self.uri.split("/", 1)[0]

    def tag(self, tag: str) -> str:
        return f"{self.uri}:{tag}"

    def by_digest(self, digest: str) -> str:
        return f"{self.uri}@{digest}"


def _error_code(error: Exception) -> str:
    response: Any = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class Registry:
    """The few ECR calls a publish makes (an ``ecr`` boto3 client)."""

    def __init__(self, ecr: Any) -> None:
        self.ecr = ecr

    def repository(self, name: str) -> Repository | None:
        try:
            found = self.ecr.describe_repositories(repositoryNames=[name])["repositories"]
        except Exception as error:
            if _error_code(error) == "RepositoryNotFoundException":
                return None
            raise PublishError(f"ECR DescribeRepositories {name}: {error}") from None
        return Repository(name=name, uri=str(found[0]["repositoryUri"]))

    def manifest(self, repository: Repository, tag: str) -> tuple[str, str] | None:
        """(digest, manifest) of the image tagged ``tag``, or None."""
        try:
            answer = self.ecr.batch_get_image(
                repositoryName=repository.name,
                imageIds=[{"imageTag": tag}],
                acceptedMediaTypes=[*INDEX_MEDIA_TYPES, *IMAGE_MEDIA_TYPES],
            )
        except Exception as error:
            raise PublishError(f"ECR BatchGetImage {repository.name}:{tag}: {error}") from None
        images = answer.get("images") or []
        if images:
            return str(images[0]["imageId"]["imageDigest"]), str(images[0]["imageManifest"])
        failures = [
            f for f in answer.get("failures") or [] if f.get("failureCode") != "ImageNotFound"
        ]
        if failures:
            failure = failures[0]
            raise PublishError(
                f"ECR BatchGetImage {repository.name}:{tag}: {failure.get('failureCode')}: "
                f"{failure.get('failureReason')}"
            )
        return None

    def has_tag(self, repository: Repository, tag: str) -> bool:
        try:
            self.ecr.describe_images(repositoryName=repository.name, imageIds=[{"imageTag": tag}])
        except Exception as error:
            if _error_code(error) == "ImageNotFoundException":
                return False
            raise PublishError(f"ECR DescribeImages {repository.name}:{tag}: {error}") from None
        return True

    def login_password(self) -> str:
        token = self.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        user, _, password = base64.b64decode(token).decode().partition(":")
        if user != "AWS" or not password:
            raise PublishError("ECR GetAuthorizationToken returned no AWS credentials")
        return password


class ContainerTool(Protocol):
    def login(self, registry: str, password: str) -> None: ...

    def push_archive(self, archive: Path, architecture: str, reference: str) -> None: ...

    def create_index(self, reference: str, sources: Sequence[str]) -> None: ...


class Docker:
    """docker (with buildx: preinstalled on GitHub's ubuntu-24.04 and ubuntu-24.04-arm)."""

    def _run(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["docker", *args], input=stdin, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise PublishError(f"docker {' '.join(args[:2])}: {last}")
        return result.stdout.strip()

    def login(self, registry: str, password: str) -> None:
        self._run("login", "--username", "AWS", "--password-stdin", registry, stdin=password)

    def push_archive(self, archive: Path, architecture: str, reference: str) -> None:
        loaded = self._run("load", "--quiet", "--input", str(archive))
        image = loaded.rsplit(": ", 1)[-1]  # "Loaded image: <ref>" or "Loaded image ID: <id>"
        built_for = self._run("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image)
        if built_for != f"linux/{architecture}":
            raise PublishError(
                f"{archive.name} holds a {built_for} image, not linux/{architecture}"
            )
        self._run("tag", image, reference)
        self._run("push", "--quiet", reference)

    def create_index(self, reference: str, sources: Sequence[str]) -> None:
        self._run("buildx", "imagetools", "create", "--tag", reference, *sources)

    def inspect_raw(self, reference: str) -> str:
        return self._run("buildx", "imagetools", "inspect", "--raw", reference)


# ---------------------------------------------------------------------------------------
# Publishing
# ---------------------------------------------------------------------------------------
def archive_name(architecture: str) -> str:
    """The file a build job leaves for the deploy job (Makefile image-archive)."""
    return f"pyscale-app-{architecture}.tar"


@dataclass(frozen=True)
class Published:
    image: str  # <repository uri>@sha256:<digest>, or "" when the repository is missing
    reused: bool

    def outputs(self) -> list[str]:
        return [
            f"repository={'exists' if self.image else 'missing'}",
            f"image={self.image}",
            f"reused={'true' if self.reused else 'false'}",
        ]


def publish(
    stack: str,
    tag: str,
    archives: Path,
    registry: Registry,
    tool: ContainerTool,
    needed: Mapping[str, str] | None = None,
) -> Published:
    """Push the commit's images (unless ``tag`` is already there) and return the manifest
    list's digest reference, checked for ``needed`` (default: required_architectures)."""
    name = repository_name(f"{stacks.project_name()}-{stack}")
    repository = registry.repository(name)
    if repository is None:
        return Published(image="", reused=False)
    needed = required_architectures(stack) if needed is None else needed
    existing = registry.manifest(repository, tag)
    reused = existing is not None
    if existing is None:
        missing = [a for a in BUILT_ARCHITECTURES if not (archives / archive_name(a)).is_file()]
        if missing:
            raise PublishError(
                f"no image archive for {', '.join(missing)} in {archives} (the image-build jobs)"
            )
        tool.login(repository.registry, registry.login_password())
        sources = []
        for architecture in BUILT_ARCHITECTURES:
            arch_tag = f"{tag}-{architecture}"
            # A run that failed after pushing one architecture left its immutable tag: the
            # re-run uses it (same commit) rather than fail pushing over it.
            if not registry.has_tag(repository, arch_tag):
                tool.push_archive(
                    archives / archive_name(architecture), architecture, repository.tag(arch_tag)
                )
            sources.append(repository.tag(arch_tag))
        tool.create_index(repository.tag(tag), sources)
        existing = registry.manifest(repository, tag)
        if existing is None:
            raise PublishError(f"{repository.tag(tag)} is not in ECR after the push")
    digest, manifest = existing
    check_index(manifest, needed, repository.tag(tag))
    return Published(image=repository.by_digest(digest), reused=reused)


# ---------------------------------------------------------------------------------------
# The stack's pyscale:appImage, in this checkout only
# ---------------------------------------------------------------------------------------
def _pulumi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pulumi", *args, "--non-interactive"], capture_output=True, text=True, check=False
    )


def set_image(stack_ref: str, image: str) -> None:
    result = _pulumi("config", "set", "--stack", stack_ref, IMAGE_KEY, image)
    if result.returncode != 0:
        raise PublishError(f"pulumi config set {IMAGE_KEY}: {result.stderr.strip()}")


def deployed_image(stack_ref: str) -> str:
    """The image the stack runs now (its appImage output), or "" before the first app."""
    result = _pulumi("stack", "output", "--stack", stack_ref, "--json")
    if result.returncode != 0:
        raise PublishError(f"pulumi stack output: {result.stderr.strip()}")
    outputs = json.loads(result.stdout or "{}")
    return str(outputs.get(OUTPUT_NAME) or "")


# ---------------------------------------------------------------------------------------
# CLI (the Makefile's image-* targets; each prints key=value lines for $GITHUB_OUTPUT)
# ---------------------------------------------------------------------------------------
def _commands(options: argparse.Namespace) -> Iterable[str]:
    if options.command == "platform":
        yield f"platform={stacks.platform_of(options.stack)}"
    elif options.command == "check-base":
        check_index(
            Docker().inspect_raw(options.image),
            {options.arch: "this build's architecture"},
            f"BASE_IMAGE {options.image}",
        )
        yield f"base={options.image}"
    elif options.command == "publish":
        if stacks.platform_of(options.stack) != Platform.EKS.value:
            raise PublishError(f"stack {options.stack} is not on platform eks")
        import boto3  # the CLI's dependency; imported here so the other commands need no AWS

        registry = Registry(boto3.client("ecr"))
        yield from publish(
            options.stack, options.tag, options.archives, registry, Docker()
        ).outputs()
    elif options.command == "use":
        if not options.image:
            raise PublishError("no image to use (the publish step printed none)")
        set_image(options.stack_ref, options.image)
        yield f"image={options.image}"
    elif options.command == "keep-deployed":
        image = deployed_image(options.stack_ref)
        if image:
            set_image(options.stack_ref, image)
        yield f"image={image}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("platform").add_argument("--stack", required=True)
    base = commands.add_parser("check-base")
    base.add_argument("--image", required=True)
    base.add_argument("--arch", required=True, choices=BUILT_ARCHITECTURES)
    push = commands.add_parser("publish")
    push.add_argument("--stack", required=True)
    push.add_argument("--tag", required=True)
    push.add_argument("--archives", required=True, type=Path)
    use = commands.add_parser("use")
    use.add_argument("--stack-ref", required=True)
    use.add_argument("--image", default="")
    commands.add_parser("keep-deployed").add_argument("--stack-ref", required=True)
    options = parser.parse_args(argv)
    try:
        for line in _commands(options):
            print(line)
    except (PublishError, stacks.StackFileError, stacks.UnknownStackError) as error:
        print(f"pyscale image: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
