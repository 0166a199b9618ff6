"""The release's wheelhouse: the lock's closure for the instance's Python and CPU, whatever
machine builds it; every wheel hash-checked; downloaded once (cached by what decides it) by
the real `pip download`, here from a package index on loopback serving small real wheels."""

from __future__ import annotations

import re
import shutil

import pytest

from infra import wheelhouse
from infra.release import export_requirements
from infra.wheelhouse import (
    PREBUILT_ENV,
    WheelhouseError,
    build_wheelhouse,
    manylinux_platforms,
    requirements_for_target,
    verify,
)
from tests.support.wheels import FixtureWheel, SimpleIndex, make_wheel, requirements_for

REPO_ROOT = wheelhouse.Path(__file__).resolve().parents[2]
A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
ASYNC_TIMEOUT = f"""async-timeout==5.0.1 ; python_full_version < '3.11.3' \\
    --hash=sha256:{B} \\
    --hash=sha256:{A}
"""
REDIS = f"""redis==6.4.0 \\
    --hash=sha256:{C}
"""
COLORAMA = f"""colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:{D}
"""
LOCKED = ASYNC_TIMEOUT + REDIS + COLORAMA


# ---------------------------------------------------------------------------------------
# The target's requirements, decided here, not by the building machine
# ---------------------------------------------------------------------------------------
def test_markers_are_evaluated_for_the_instance_not_the_building_machine():
    assert requirements_for_target(LOCKED, "3.12.0", "aarch64") == (
        f"redis==6.4.0 \\\n    --hash=sha256:{C}\n"
    )


def test_an_older_python_gets_the_backport_the_lock_pins_for_it():
    assert requirements_for_target(LOCKED, "3.11.2", "x86_64") == (
        f"async-timeout==5.0.1 \\\n    --hash=sha256:{A} \\\n    --hash=sha256:{B}\n"
        f"redis==6.4.0 \\\n    --hash=sha256:{C}\n"
    )


def test_the_target_text_has_one_layout_whatever_the_exporters_order():
    reordered = (
        COLORAMA
        + REDIS
        + ASYNC_TIMEOUT.replace(f"{B} \\\n    --hash=sha256:{A}", f"{A} \\\n    --hash=sha256:{B}")
    )

    assert reordered != LOCKED
    assert requirements_for_target(reordered, "3.11.2", "x86_64") == requirements_for_target(
        LOCKED, "3.11.2", "x86_64"
    )


def test_the_real_lock_closure_for_al2023_keeps_every_runtime_dependency():
    target = requirements_for_target(export_requirements(REPO_ROOT), "3.12.0", "aarch64")
    names = {line.split("==")[0] for line in target.splitlines() if "==" in line}
    assert {"flask", "gunicorn", "redis", "hiredis", "prometheus-client", "boto3"} <= names
    assert "async-timeout" not in names  # python_full_version < '3.11.3' only
    assert " ; " not in target


def test_requirements_without_hashes_are_refused():
    with pytest.raises(WheelhouseError, match=re.escape("requirements without hashes: redis")):
        requirements_for_target("redis==6.4.0\n", "3.12.0", "x86_64")


def test_pip_is_offered_every_glibc_of_al2023_down_to_manylinux2014():
    platforms = manylinux_platforms("aarch64")
    assert platforms[0] == "manylinux_2_34_aarch64"
    assert platforms[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert len(platforms) == 34 - 17 + 1 + 1


# ---------------------------------------------------------------------------------------
# Verification: what ships is exactly what the lock pins
# ---------------------------------------------------------------------------------------
@pytest.fixture
def arm_wheelhouse(tmp_path):
    wheels = [
        FixtureWheel("native", "1.0", "cp312-cp312-manylinux_2_17_aarch64"),
        FixtureWheel("stable", "2.0", "cp38-abi3-manylinux_2_28_aarch64"),
        FixtureWheel("pure", "3.0", "py3-none-any"),
    ]
    built = [(w, make_wheel(tmp_path / "house", w)) for w in wheels]
    return tmp_path / "house", requirements_for(built)


def test_a_wheelhouse_that_matches_the_pins_verifies(arm_wheelhouse):
    directory, requirements = arm_wheelhouse
    assert sorted(verify(directory, requirements, "arm64")) == [
        "native-1.0-cp312-cp312-manylinux_2_17_aarch64.whl",
        "pure-3.0-py3-none-any.whl",
        "stable-2.0-cp38-abi3-manylinux_2_28_aarch64.whl",
    ]


def test_a_tampered_wheel_is_refused_naming_it(arm_wheelhouse):
    directory, requirements = arm_wheelhouse
    with (directory / "pure-3.0-py3-none-any.whl").open("ab") as wheel:
        wheel.write(b"\0")
    with pytest.raises(
        WheelhouseError, match=re.escape("pure-3.0-py3-none-any.whl does not match")
    ):
        verify(directory, requirements, "arm64")


def test_wheels_for_the_other_cpu_are_refused(arm_wheelhouse):
    directory, requirements = arm_wheelhouse
    with pytest.raises(WheelhouseError, match=re.escape("does not install on CPython 3.12 x86_64")):
        verify(directory, requirements, "x86_64")


def test_a_missing_or_unpinned_wheel_is_refused(arm_wheelhouse):
    directory, requirements = arm_wheelhouse
    make_wheel(directory, FixtureWheel("stowaway", "1.0", "py3-none-any"))
    with pytest.raises(
        WheelhouseError, match=re.escape("stowaway-1.0-py3-none-any.whl is not pinned")
    ):
        verify(directory, requirements, "arm64")
    (directory / "stowaway-1.0-py3-none-any.whl").unlink()
    (directory / "native-1.0-cp312-cp312-manylinux_2_17_aarch64.whl").unlink()
    with pytest.raises(WheelhouseError, match=re.escape("no wheel for native")):
        verify(directory, requirements, "arm64")


# ---------------------------------------------------------------------------------------
# Building: the real pip download, cached
# ---------------------------------------------------------------------------------------
@pytest.fixture
def index(tmp_path):
    files = tmp_path / "index"
    for wheel in (
        FixtureWheel("native", "1.0", "cp312-cp312-manylinux_2_17_aarch64"),
        FixtureWheel("native", "1.0", "cp312-cp312-manylinux_2_17_x86_64"),
        FixtureWheel("native", "1.0", "cp311-cp311-manylinux_2_17_x86_64"),
        FixtureWheel("pure", "3.0", "py3-none-any"),
    ):
        make_wheel(files, wheel)
    server = SimpleIndex(files)
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv(PREBUILT_ENV, raising=False)
    monkeypatch.setenv(wheelhouse.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def locked_for(index) -> str:
    wheels = sorted(index.directory.glob("*.whl"))
    lines = {}
    for path in wheels:
        name, version = path.name.split("-")[:2]
        lines.setdefault((name, version), []).append(
            wheelhouse.hashlib.sha256(path.read_bytes()).hexdigest()
        )
    return "".join(
        f"{name}=={version}" + "".join(f" \\\n    --hash=sha256:{h}" for h in hashes) + "\n"
        for (name, version), hashes in sorted(lines.items())
    )


@pytest.mark.parametrize(
    ("architecture", "native"),
    [
        ("arm64", "native-1.0-cp312-cp312-manylinux_2_17_aarch64.whl"),
        ("x86_64", "native-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
    ],
)
def test_pip_downloads_the_cp312_wheels_of_the_instances_cpu(index, cache, architecture, native):
    house = build_wheelhouse(locked_for(index), architecture, index_url=index.url)

    machine = wheelhouse.MACHINES[architecture]
    assert sorted(house.wheels) == [native, "pure-3.0-py3-none-any.whl"]
    assert house.requirements == requirements_for_target(locked_for(index), "3.12.0", machine)
    assert all(path.is_relative_to(cache) for path in house.wheels.values())


def test_a_second_build_comes_from_the_cache_without_asking_the_index(index, cache):
    first = build_wheelhouse(locked_for(index), "arm64", index_url=index.url)
    asked = len(index.requests)
    second = build_wheelhouse(locked_for(index), "arm64", index_url=index.url)

    assert asked > 0
    assert len(index.requests) == asked
    assert second == first


def test_a_tampered_cache_entry_is_refused_not_shipped(index, cache):
    house = build_wheelhouse(locked_for(index), "arm64", index_url=index.url)
    wheel = house.wheels["pure-3.0-py3-none-any.whl"]
    wheel.write_bytes(wheel.read_bytes() + b"\0")

    with pytest.raises(WheelhouseError, match=re.escape("does not match its pinned hashes")):
        build_wheelhouse(locked_for(index), "arm64", index_url=index.url)


def test_an_index_serving_other_bytes_than_the_lock_pins_fails_the_build(index, cache):
    locked = locked_for(index)
    with (index.directory / "pure-3.0-py3-none-any.whl").open("ab") as tampered:
        tampered.write(b"\0")

    with pytest.raises(WheelhouseError, match=re.escape("pip download failed")):
        build_wheelhouse(locked, "arm64", index_url=index.url)
    assert not any(cache.glob("*/*.whl"))  # nothing half-downloaded is left to reuse


def test_a_prebuilt_wheelhouse_is_used_and_verified(tmp_path, monkeypatch, arm_wheelhouse):
    directory, requirements = arm_wheelhouse
    prebuilt = tmp_path / "prebuilt"
    shutil.copytree(directory, prebuilt / "arm64")
    (prebuilt / "arm64" / "requirements.txt").write_text(requirements)
    monkeypatch.setenv(PREBUILT_ENV, str(prebuilt))

    house = build_wheelhouse("ignored==1 \\\n    --hash=sha256:" + "0" * 64 + "\n", "arm64")

    assert house.requirements == requirements
    assert len(house.wheels) == 3
    monkeypatch.setenv(PREBUILT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(WheelhouseError, match=re.escape("no arm64/requirements.txt")):
        build_wheelhouse("", "arm64")
