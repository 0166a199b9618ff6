"""The app release: reproducible archive, pinned and hashed dependencies, and the bucket it
is stored in (private, versioned, encrypted)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from infra.release import (
    FIXED_MTIME,
    REQUIREMENTS_NAME,
    ReleaseError,
    build_artifact,
    export_requirements,
)
from infra.wheelhouse import PREBUILT_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = "flask==3.1.3 \\\n    --hash=sha256:" + "0" * 64 + "\n"


@pytest.fixture
def repo(tmp_path) -> Path:
    """A copy of the repository's reference app, to change freely."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "app", root / "app", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def build(repo: Path, out: Path, **kwargs):
    return build_artifact(repo, out_dir=out, requirements=REQUIREMENTS, **kwargs)


# ---------------------------------------------------------------------------------------
# Reproducible
# ---------------------------------------------------------------------------------------
def test_the_same_app_gives_the_same_hash_whatever_the_mtimes_and_bytecode(repo, tmp_path):
    first = build(repo, tmp_path / "one")
    for path in (repo / "app").rglob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (repo / "app" / "__pycache__").mkdir()
    (repo / "app" / "__pycache__" / "views.cpython-312.pyc").write_bytes(b"\x00bytecode")
    second = build(repo, tmp_path / "two")

    assert second.sha256 == first.sha256
    assert second.path.read_bytes() == first.path.read_bytes()
    assert first.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()


def test_changing_the_app_changes_the_hash(repo, tmp_path):
    before = build(repo, tmp_path / "before")
    views = repo / "app" / "views.py"
    views.write_text(views.read_text() + "\n# a change\n")
    after = build(repo, tmp_path / "after")

    assert after.sha256 != before.sha256
    assert after.version != before.version


def test_changing_the_locked_dependencies_changes_the_hash(repo, tmp_path):
    before = build(repo, tmp_path / "before")
    after = build_artifact(
        repo, out_dir=tmp_path / "after", requirements=REQUIREMENTS.replace("3.1.3", "3.1.4")
    )

    assert after.sha256 != before.sha256


def test_archive_entries_are_sorted_with_fixed_owner_mode_and_mtime(repo, tmp_path):
    artifact = build(repo, tmp_path / "out")
    with tarfile.open(artifact.path) as archive:
        members = archive.getmembers()

    names = [m.name for m in members]
    assert names == sorted(names)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {
        (FIXED_MTIME, 0, 0, "", "", 0o644)
    }
    assert "app/gunicorn.conf.py" in names
    assert "app/wsgi.py" in names
    assert REQUIREMENTS_NAME in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


# ---------------------------------------------------------------------------------------
# Dependencies: the lock file's runtime closure, pinned and hashed
# ---------------------------------------------------------------------------------------
def test_requirements_pin_every_runtime_dependency_with_hashes_and_no_dev_tools():
    text = export_requirements(REPO_ROOT)
    requirements = [line for line in text.splitlines() if line and not line.startswith(" ")]
    names = {line.split("==")[0] for line in requirements}

    assert {"flask", "gunicorn", "redis", "hiredis", "prometheus-client", "boto3"} <= names
    assert not names & {"pytest", "ruff", "pulumi", "pulumi-aws", "matplotlib"}
    assert all("==" in line for line in requirements)
    assert text.count("--hash=sha256:") >= len(requirements)


def test_the_shipped_requirements_are_in_the_archive(tmp_path):
    artifact = build_artifact(REPO_ROOT, out_dir=tmp_path)
    with tarfile.open(artifact.path) as archive:
        shipped = archive.extractfile(REQUIREMENTS_NAME).read().decode()

    assert shipped == export_requirements(REPO_ROOT)


# ---------------------------------------------------------------------------------------
# Bringing your own app
# ---------------------------------------------------------------------------------------
def test_an_own_app_is_packaged_beside_the_reference_apps_serving_harness(repo, tmp_path):
    own = repo / "services" / "shop"
    own.mkdir(parents=True)
    (own / "wsgi.py").write_text("def application(environ, start_response):\n    ...\n")

    artifact = build(
        repo,
        tmp_path / "out",
        app_source_dir="services/shop",
        wsgi_module="services.shop.wsgi:application",
    )

    assert "services/shop/wsgi.py" in artifact.members
    assert "app/gunicorn.conf.py" in artifact.members


def test_a_wsgi_module_missing_from_the_release_is_a_clear_error(repo, tmp_path):
    with pytest.raises(ReleaseError, match=r"pyscale:wsgiModule: module 'shop\.wsgi'"):
        build(repo, tmp_path / "out", wsgi_module="shop.wsgi:app")


def test_a_missing_app_directory_is_a_clear_error(repo, tmp_path):
    with pytest.raises(ReleaseError, match=r"pyscale:appSourceDir: directory 'shop'"):
        build(repo, tmp_path / "out", app_source_dir="shop", wsgi_module="shop.wsgi:app")


# ---------------------------------------------------------------------------------------
# The bucket and object, as the program registers them
# ---------------------------------------------------------------------------------------
def release_resources(run) -> dict[str, dict]:
    component = next(r for r in run.resources if r.type == "pyscale:release:AppRelease")
    return {r.type.rsplit(":", 1)[-1]: r for r in run.children_of(component)}


def test_the_release_bucket_is_private_versioned_encrypted_and_tls_only(each_stack_run):
    parts = release_resources(each_stack_run)
    sse = parts["BucketServerSideEncryptionConfiguration"].inputs["rules"][0]
    policy = parts["BucketPolicy"].inputs["policy"]

    assert parts["BucketVersioning"].inputs["versioningConfiguration"]["status"] == "Enabled"
    # SSE-S3, or SSE-KMS with the stack key where customerManagedKey is on (prod).
    assert sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("AES256", "aws:kms")
    assert all(
        parts["BucketPublicAccessBlock"].inputs[key] is True
        for key in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    assert parts["BucketOwnershipControls"].inputs["rule"]["objectOwnership"] == (
        "BucketOwnerEnforced"
    )
    assert '"aws:SecureTransport": "false"' in policy


def test_the_artifact_object_is_the_built_archive_and_the_stack_says_where(each_stack_run):
    parts = release_resources(each_stack_run)
    artifact = parts["BucketObjectv2"]
    bucket = parts["Bucket"].outputs["bucket"]
    data = Path(artifact.inputs["source"].path).read_bytes()

    digest = hashlib.sha256(data).hexdigest()
    assert artifact.inputs["key"] == f"releases/{digest}.tar"
    assert artifact.inputs["metadata"]["sha256"] == digest
    assert (
        each_stack_run.stack_outputs["artifactLocation"] == f"s3://{bucket}/releases/{digest}.tar"
    )
    assert (
        each_stack_run.stack_outputs["appVersion"] == "r-" + hashlib.sha256(data).hexdigest()[:12]
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
        shipped = archive.extractfile(REQUIREMENTS_NAME).read().decode()
    assert "app/wsgi.py" in names
    # The fleet's wheelhouse rides along (the suite's fixture: PYSCALE_WHEELHOUSE_DIR).
    architecture = each_stack_run.stack_outputs["architecture"]
    fixture = Path(os.environ[PREBUILT_ENV]) / architecture
    assert sorted(n for n in names if n.startswith("wheelhouse/")) == sorted(
        f"wheelhouse/{w.name}" for w in fixture.glob("*.whl")
    )
    assert shipped == (fixture / "requirements.txt").read_text()


def test_a_fleet_release_carries_the_wheels_of_its_cpu_and_stays_reproducible(repo, tmp_path):
    arm = build(repo, tmp_path / "arm", architecture="arm64")
    again = build(repo, tmp_path / "again", architecture="arm64")
    x86 = build(repo, tmp_path / "x86", architecture="x86_64")

    assert again.path.read_bytes() == arm.path.read_bytes()
    assert arm.sha256 != x86.sha256
    assert arm.key == f"releases/{arm.sha256}.tar"
    assert arm.path.name == f"{arm.sha256}.tar"
    assert any(m.endswith("_aarch64.whl") for m in arm.members)
    assert not any(m.endswith("_aarch64.whl") for m in x86.members)


def test_a_wheelhouse_that_does_not_match_is_a_clear_release_error(repo, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    shutil.copytree(Path(os.environ[PREBUILT_ENV]), broken)
    wheel = next((broken / "arm64").glob("*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    monkeypatch.setenv(PREBUILT_ENV, str(broken))

    with pytest.raises(ReleaseError, match=f"the release's wheelhouse: wheelhouse: {wheel.name}"):
        build(repo, tmp_path / "out", architecture="arm64")


def test_a_replaced_release_stays_in_the_bucket_for_the_versions_that_still_name_it(
    each_stack_run,
):
    # The provider's delete of an object in a versioned bucket removes every version of its
    # key; a rolled-back launch template must still find its release.
    artifact = release_resources(each_stack_run)["BucketObjectv2"]
    assert artifact.options.retain_on_delete is True
