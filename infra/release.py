"""The app release: a reproducible archive of the app and its pinned, hashed dependencies,
stored in a private, versioned, encrypted S3 bucket.

The archive holds
- ``app/`` — the reference app package, always: it carries ``app/gunicorn.conf.py`` and
  ``app/contract.py``, the serving harness every app runs under;
- the user's own app directory (``pyscale:appSourceDir``) when it is not ``app``, at its
  path relative to the repository, so ``pyscale:wsgiModule`` imports from the archive root;
- ``requirements.txt`` — the ``[project] dependencies`` closure from uv.lock, every
  distribution pinned with its SHA-256 hashes (``uv export``); for a fleet, with the
  environment markers evaluated for the instance (infra/wheelhouse.py);
- ``wheelhouse/`` — for a fleet, those distributions as wheels for its architecture
  (manylinux, CPython 3.12, hash-checked), so the instance installs with ``pip
  --no-index`` and its boot never reaches a package index.

Reproducible: sorted entries, fixed mtime, owner and modes, and no compression — gzip
output depends on the zlib build, which would make two machines disagree about the hash of
the same app (and the wheels are compressed already). So the SHA-256 changes exactly when
the app, its gunicorn settings, its locked dependencies or the fleet's architecture
change.

Content-addressed: the archive is the object ``releases/<sha256>.tar``. A new release is a
new key (a new launch template version rolls the fleet); nothing depends on when the
bucket's versioning takes effect (AWS advises waiting up to 15 minutes after enabling it
before writing; a write before then gets no version id); a rollback's launch template
still names its own object, because Pulumi leaves a replaced release in the bucket
(``retain_on_delete``): the provider's delete of an object in a versioned bucket removes
*every* version of its key (terraform-provider-aws internal/service/s3/object.go,
resourceObjectDelete -> deleteAllObjectVersions), which would leave a rolled-back launch
template nothing to boot. The version id (``null`` when written before versioning took
effect) is kept in the launch template only as a pin. The instance role reads exactly the
``releases/`` prefix. Old releases are therefore not expired by the bucket (a current-object
expiry by age would also delete the live release of a stack nobody deployed for that long);
the lifecycle rule expires noncurrent versions, delete markers and unfinished uploads.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pulumi
import pulumi_aws as aws

from infra.buckets import abort_incomplete_uploads_rule
from infra.settings import ReleaseSettings
from infra.wheelhouse import WheelhouseError, build_wheelhouse

REFERENCE_APP_DIR: Final = "app"
REQUIREMENTS_NAME: Final = "requirements.txt"
RELEASES_PREFIX: Final = "releases/"
WHEELHOUSE_DIR: Final = "wheelhouse"
# 1980-01-01: the earliest date zip-based tools accept; any constant would do.
FIXED_MTIME: Final = 315_532_800
_SKIPPED_DIRS: Final = frozenset({"__pycache__", "node_modules"})
_SKIPPED_SUFFIXES: Final = (".pyc", ".pyo", ".egg-info")
# Old object versions stay this long so an instance refresh can roll back to them.
NONCURRENT_VERSION_DAYS: Final = 30


class ReleaseError(pulumi.RunError):
    """The release cannot be built (the message names the setting or file at fault)."""


@dataclass(frozen=True)
class ReleaseArtifact:
    """A built archive: where it is, its SHA-256 and what it holds."""

    path: Path
    sha256: str
    members: tuple[str, ...]

    @property
    def key(self) -> str:
        """The S3 key: the content's own hash."""
        return f"{RELEASES_PREFIX}{self.sha256}.tar"

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    @property
    def version(self) -> str:
        """The release label (APP_VERSION): short enough for logs, derived from the content."""
        return f"r-{self.sha256[:12]}"


# ---------------------------------------------------------------------------------------
# Building the archive (pure: files in, bytes out)
# ---------------------------------------------------------------------------------------
def find_uv(repo_root: Path) -> str:
    """uv from PATH, else the private copy `make install` puts in .tools/."""
    found = shutil.which("uv") or shutil.which("uv", path=str(repo_root / ".tools" / "bin"))
    if found is None:
        raise ReleaseError(
            "building the app release needs uv (it exports the locked dependencies with their "
            "hashes): install it, or run `make install`, which provides .tools/bin/uv"
        )
    return found


def export_requirements(repo_root: Path) -> str:
    """The runtime dependency closure from uv.lock, pinned and hashed (no dev/infra groups)."""
    if not (repo_root / "uv.lock").is_file():
        raise ReleaseError(f"no uv.lock in {repo_root}: run `uv lock` and commit it")
    command = [
        find_uv(repo_root),
        "export",
        "--frozen",
        "--format=requirements-txt",
        "--no-default-groups",
        "--no-emit-project",
        "--no-header",
        "--no-annotate",
    ]
    result = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ReleaseError(f"`uv export` failed: {result.stderr.strip()}")
    return result.stdout


def _source_files(repo_root: Path, directory: str) -> list[tuple[str, Path]]:
    base = repo_root / directory
    found: list[tuple[str, Path]] = []
    for current, dirs, files in os.walk(base):
        dirs[:] = [
            d
            for d in dirs
            if d not in _SKIPPED_DIRS
            and not d.startswith(".")
            and not d.endswith(_SKIPPED_SUFFIXES)
        ]
        for name in files:
            if name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES):
                continue
            path = Path(current, name)
            found.append((path.relative_to(repo_root).as_posix(), path))
    return found


def _module_exists(members: set[str], wsgi_module: str) -> bool:
    module = wsgi_module.split(":", 1)[0].replace(".", "/")
    return f"{module}.py" in members or f"{module}/__init__.py" in members


def _add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = FIXED_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def archive_bytes(files: Mapping[str, bytes]) -> bytes:
    """A tar of these files whose bytes depend only on the names and contents."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            _add_file(archive, name, files[name])
    return buffer.getvalue()


def build_artifact(
    repo_root: Path,
    app_source_dir: str = REFERENCE_APP_DIR,
    wsgi_module: str = "app.wsgi:app",
    out_dir: Path | None = None,
    requirements: str | None = None,
    architecture: str | None = None,
) -> ReleaseArtifact:
    """Build the release archive; raises ReleaseError naming what is missing.

    app_source_dir: the app's directory relative to repo_root (``pyscale:appSourceDir``).
    wsgi_module: ``module:callable`` gunicorn serves (``pyscale:wsgiModule``); its module
        must be in the archive.
    out_dir: where the archive is written (default ``<repo_root>/.pyscale/releases``).
    requirements: the pinned requirements text; None exports it from uv.lock.
    architecture: the fleet's ('arm64' or 'x86_64'): ships its wheelhouse and the
        requirements evaluated for it. None: the requirements as exported, no wheels (the
        container image downloads its own).
    """
    out_dir = out_dir if out_dir is not None else repo_root / ".pyscale" / "releases"
    for key, directory in (
        ("pyscale:appSourceDir", app_source_dir),
        ("the reference app (its gunicorn.conf.py serves every app)", REFERENCE_APP_DIR),
    ):
        if not (repo_root / directory).is_dir():
            raise ReleaseError(f"{key}: directory {directory!r} not found in {repo_root}")
    files: dict[str, bytes] = {}
    for directory in sorted({REFERENCE_APP_DIR, app_source_dir}):
        for name, path in _source_files(repo_root, directory):
            files[name] = path.read_bytes()
    if not _module_exists(set(files), wsgi_module):
        module = wsgi_module.split(":", 1)[0]
        raise ReleaseError(
            f"pyscale:wsgiModule: module {module!r} is not in the release (looked for "
            f"{module.replace('.', '/')}.py under {sorted({REFERENCE_APP_DIR, app_source_dir})}"
            "); the module path is relative to the repository root"
        )
    text = export_requirements(repo_root) if requirements is None else requirements
    if architecture is not None:
        try:
            house = build_wheelhouse(text, architecture)
        except WheelhouseError as error:
            raise ReleaseError(f"the release's wheelhouse: {error}") from None
        text = house.requirements
        for wheel_name, wheel_path in house.wheels.items():
            files[f"{WHEELHOUSE_DIR}/{wheel_name}"] = wheel_path.read_bytes()
    files[REQUIREMENTS_NAME] = text.encode()
    data = archive_bytes(files)
    digest = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Named by content: the path a FileAsset reads is not part of what Pulumi diffs (an
    # asset equals another by hash alone: pulumi sdk/go/common/resource/asset Asset.Equals;
    # the bridge hands the provider a temp copy named by that hash), so another checkout's
    # path changes nothing; the name only keeps builds of different content apart.
    path = out_dir / f"{digest}.tar"
    if not path.exists():
        # Write then rename: a concurrent run never sees a half-written archive.
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return ReleaseArtifact(path=path, sha256=digest, members=tuple(sorted(files)))


def build_release(repo_root: Path, settings: ReleaseSettings, architecture: str) -> ReleaseArtifact:
    """The stack's release archive (``appSourceDir``, ``wsgiModule``) with the wheelhouse
    of the fleet's architecture."""
    return build_artifact(
        repo_root, settings.app_source_dir, settings.wsgi_module, architecture=architecture
    )


# ---------------------------------------------------------------------------------------
# The component: bucket + the artifact object
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AppReleaseArgs:
    """Inputs of AppRelease.

    settings: the release keys (the WSGI callable the instances serve).
    artifact: the archive to upload, from ``build_release`` (built before any resource is
        registered, so a missing app directory or WSGI module fails the run cleanly first).
    key_arn: the stack's KMS key for SSE-KMS (customerManagedKey); None: SSE-S3.
    tags: tags for every resource.
    """

    settings: ReleaseSettings
    artifact: ReleaseArtifact
    key_arn: pulumi.Input[str] | None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseObject:
    """The release the instances install: the S3 object version, its hash and entry point."""

    bucket_name: pulumi.Input[str]
    object_key: str
    releases_arn: pulumi.Input[str]
    """``<bucket arn>/releases/*``: what the instance role may read."""
    version_id: pulumi.Input[str]
    """The object's version id; ``null`` when S3 wrote it before versioning took effect."""
    sha256: str
    app_version: str
    wsgi_module: str


class AppRelease(pulumi.ComponentResource):
    """The app packaged reproducibly and stored in a private, versioned, encrypted bucket.

    Outputs: ``bucket_name``, ``bucket_arn``, ``object_key``, ``object_arn``,
    ``version_id`` (the S3 object version the fleet installs), the plain values
    ``sha256`` and ``app_version`` known before deployment, and ``installable``: all the
    fleet needs, in one value.
    """

    def __init__(
        self, name: str, args: AppReleaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:release:AppRelease", name, None, opts)
        self.artifact = args.artifact
        self.sha256: str = self.artifact.sha256
        self.app_version: str = self.artifact.version
        self.object_key: str = self.artifact.key
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        # Release archives are rebuilt from source at will: let `pulumi destroy` empty it.
        self.bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=True, tags=tags, opts=child)
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        sse = "aws:kms" if args.key_arn is not None else "AES256"
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm=sse, kms_master_key_id=args.key_arn
                    ),
                    # One data key per bucket, not per object: fewer KMS calls.
                    bucket_key_enabled=args.key_arn is not None or None,
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-releases",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="releases/"),
                    # A superseded release (Pulumi deleted its key) stays readable by version
                    # id this long, for rollbacks; then it and its delete marker go.
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=NONCURRENT_VERSION_DAYS
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        expired_object_delete_marker=True
                    ),
                ),
                # An upload of a few hundred KB that has not finished in a day never will.
                abort_incomplete_uploads_rule(days=1),
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                self.bucket.arn,
                                pulumi.Output.concat(self.bucket.arn, "/*"),
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        # Content-addressed (see the module docstring): a new release is a new key; the old
        # one stays (retain_on_delete) for the launch template versions that still name it.
        self.object = aws.s3.BucketObjectv2(
            f"{name}-artifact",
            bucket=self.bucket.id,
            key=self.object_key,
            source=pulumi.FileAsset(str(self.artifact.path)),
            content_type="application/x-tar",
            server_side_encryption=sse,
            kms_key_id=args.key_arn,
            metadata={"sha256": self.sha256},
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[versioning, encryption, ownership],
                retain_on_delete=True,
            ),
        )
        self.bucket_name: pulumi.Output[str] = self.bucket.bucket
        self.bucket_arn: pulumi.Output[str] = self.bucket.arn
        self.object_arn: pulumi.Output[str] = pulumi.Output.concat(
            self.bucket.arn, "/", self.object_key
        )
        # S3 answers a write that came before versioning took effect with no version id;
        # that object is the "null" version, which GET ?versionId=null still reads after
        # Pulumi deletes its key.
        self.version_id: pulumi.Output[str] = self.object.version_id.apply(
            lambda version: version or "null"
        )
        self.location: pulumi.Output[str] = pulumi.Output.concat(
            "s3://", self.bucket.bucket, "/", self.object_key
        )
        self.installable = ReleaseObject(
            bucket_name=self.bucket_name,
            object_key=self.object_key,
            releases_arn=pulumi.Output.concat(self.bucket.arn, "/", RELEASES_PREFIX, "*"),
            version_id=self.version_id,
            sha256=self.sha256,
            app_version=self.app_version,
            wsgi_module=args.settings.wsgi_module,
        )
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "object_key": self.object_key,
                "version_id": self.version_id,
                "sha256": self.sha256,
                "app_version": self.app_version,
            }
        )
