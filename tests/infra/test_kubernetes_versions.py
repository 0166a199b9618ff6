"""EKS support windows: a preview says when the pinned Kubernetes minor leaves (or has left)
EKS standard support, dated by the day the preview runs (injected here, never the clock)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from infra.kubernetes.addon_versions import listed_versions
from infra.kubernetes.cluster_autoscaler import RELEASES
from infra.kubernetes.eks_versions import SUPPORT_WINDOWS, WARN_DAYS, support_warning
from infra.settings import load_settings
from infra.settings.platform import ADDON_VERSION_KEYS
from pyscale import stacks
from pyscale.offline import run_stack
from pyscale.offline.kubernetes import kubernetes_objects, validate_strictly

ADDON = "aws:eks/addon:Addon"

STANDARD_END_1_33 = date(2026, 7, 29)
# dev-eks as it was first shipped: 1.33 and that minor's kube-proxy and CoreDNS.
ON_1_33 = {
    "kubernetesVersion": "1.33",
    "eksKubeProxyVersion": "v1.33.5-eksbuild.2",
    "eksCorednsVersion": "v1.12.4-eksbuild.1",
}


def eks_warnings(today: date | None, stack: str = "dev-eks", **overrides: str) -> list[str]:
    config = stacks.engine_config(stack)
    config.update({f"pyscale:{key}": value for key, value in overrides.items()})
    settings = load_settings(config, stack, today=today)
    return [w for w in settings.warnings if w.startswith("pyscale:kubernetesVersion")]


def test_every_minor_the_program_can_deploy_has_its_eks_support_dates():
    assert set(RELEASES) <= set(SUPPORT_WINDOWS)
    for window in SUPPORT_WINDOWS.values():
        assert window.end_of_extended_support > window.end_of_standard_support
        assert window.source


def test_the_calendar_is_fourteen_months_of_standard_then_twelve_of_extended_support():
    for window in SUPPORT_WINDOWS.values():
        standard, extended = window.end_of_standard_support, window.end_of_extended_support
        assert (extended.year - standard.year, extended.month, extended.day) == (
            1,
            standard.month,
            standard.day,
        ), window.minor


def test_the_shipped_eks_stack_is_in_standard_support_on_2026_12_01():
    assert eks_warnings(date(2026, 12, 1)) == []


def test_an_eks_stack_still_on_1_33_on_2026_12_01_is_told_its_standard_support_ended():
    (warning,) = eks_warnings(date(2026, 12, 1), **ON_1_33)
    assert "pyscale:kubernetesVersion 1.33" in warning
    assert "standard support ended 2026-07-29" in warning
    assert "upgrade policy is STANDARD, so EKS upgrades its control plane" in warning
    # The next minor with a Cluster Autoscaler release pinned here: one step at a time.
    assert "to 1.34 next" in warning


def test_the_last_day_of_standard_support_warns_ahead_and_the_end_day_is_past():
    # Extended-support billing starts at the beginning of the end day (UTC).
    (ahead,) = eks_warnings(STANDARD_END_1_33 - timedelta(days=1), **ON_1_33)
    assert "standard support ends 2026-07-29 (in 1 days)" in ahead
    (past,) = eks_warnings(STANDARD_END_1_33, **ON_1_33)
    assert "standard support ended 2026-07-29" in past


def test_warning_starts_exactly_warn_days_before_the_end():
    assert eks_warnings(STANDARD_END_1_33 - timedelta(days=WARN_DAYS + 1), **ON_1_33) == []
    (warning,) = eks_warnings(STANDARD_END_1_33 - timedelta(days=WARN_DAYS), **ON_1_33)
    assert f"(in {WARN_DAYS} days)" in warning


def test_an_older_pin_names_the_next_minor_to_move_to():
    warning = support_warning("1.32", date(2026, 1, 5))
    assert warning is not None
    assert "ends 2026-03-23 (in 77 days)" in warning
    assert "to 1.33 next" in warning


def test_past_extended_support_eks_creates_no_cluster_at_that_minor():
    warning = support_warning("1.31", date(2026, 12, 1))
    assert warning is not None
    assert "extended support ended 2026-11-26" in warning
    assert "EKS creates no new cluster at it" in warning


def test_without_a_date_or_off_eks_there_is_no_support_warning():
    assert eks_warnings(None) == []
    # An existing cluster's version is only what its manifests are validated against.
    assert eks_warnings(date(2026, 12, 1), stack="dev-k8s") == []


@pytest.mark.parametrize("minor", ["1.30", "1.99"])
def test_a_minor_without_recorded_dates_says_so_rather_than_guessing(minor: str):
    warning = support_warning(minor, date(2026, 12, 1))
    assert warning is not None
    assert "no EKS support dates are recorded" in warning


def test_the_newest_pinned_minor_says_no_newer_one_is_pinned_yet():
    newest = max(RELEASES, key=lambda minor: tuple(int(part) for part in minor.split(".")))
    end = SUPPORT_WINDOWS[newest].end_of_standard_support
    warning = support_warning(newest, end)
    assert warning is not None
    assert "no newer minor has a Cluster Autoscaler release pinned" in warning


@pytest.mark.parametrize("minor", ["1.34", "1.35", "1.36"])
def test_an_eks_stack_moved_to_a_newer_minor_deploys_its_autoscaler_and_add_ons(minor: str):
    # GIVEN dev-eks moved to the minor with the newest add-on versions listed for it
    pins = {key: listed_versions(addon, minor)[-1] for addon, key in ADDON_VERSION_KEYS.items()}
    run = run_stack("dev-eks", {"kubernetesVersion": minor, **pins})
    # THEN the cluster, its node groups and its add-ons are at that minor (the mocks' EKS
    # refuses an add-on version not listed for the cluster's version) ...
    assert run.one("aws:eks/cluster:Cluster").inputs["version"] == minor
    for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert group.inputs["version"] == minor
    addons = {a.inputs["addonName"]: a.inputs["addonVersion"] for a in run.of_type(ADDON)}
    assert addons == {addon: pins[key] for addon, key in ADDON_VERSION_KEYS.items()}
    # ... the Cluster Autoscaler is that minor's release by digest, and every object is
    # strictly valid at the minor.
    objects = kubernetes_objects(run)
    (autoscaler,) = [
        o for o in objects if o.kind == "Deployment" and o.name == "cluster-autoscaler"
    ]
    container = autoscaler.manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == RELEASES[minor].image
    for item in objects:
        validate_strictly(item.manifest, minor)
