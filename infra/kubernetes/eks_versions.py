"""When EKS stops supporting each Kubernetes minor, and what the program says about it.

EKS gives a minor 14 months of standard support from its EKS release, then 12 months of
extended support (billed per cluster hour); billing for extended support starts at the
beginning of the end-of-standard-support day, UTC (AWS EKS User Guide, "Understand the
Kubernetes version lifecycle on EKS", release calendar). This program sets every cluster's
upgrade policy to STANDARD, and under STANDARD "your EKS cluster will automatically upgrade
to the next supported Kubernetes version in standard support" at the end of standard support
(User Guide, "View current cluster upgrade policy"). That upgrade moves the control plane
only: node groups and add-ons stay on the old minor, and this stack's pin then asks EKS for a
downgrade it refuses ("You cannot downgrade the Kubernetes of an Amazon EKS cluster",
User Guide, "Update existing cluster to new Kubernetes version"). So a preview warns
``WARN_DAYS`` before that day and from it on: upgrade yourself, one minor at a time
(README, "Upgrading Kubernetes").

No machine here reaches AWS: the dates are the calendar's as read from the sources below,
never ``aws eks describe-cluster-versions``'s. Check it (``endOfStandardSupportDate``) before
relying on a date; AWS announces an end of standard support at least 60 days ahead (User
Guide, version FAQ).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from infra.kubernetes.cluster_autoscaler import RELEASES

# A preview warns this many days before a pinned minor leaves standard support: an upgrade
# moves one minor at a time (control plane, then the node groups roll, then the add-on pins
# follow), and AWS's own notice may come only 60 days ahead.
WARN_DAYS: Final = 90

_AWS_GUIDE: Final = (
    "awsdocs/amazon-eks-user-guide @8596db85, latest/ug/versioning/kubernetes-versions.adoc, "
    "release calendar (copy listing 1.33 as newest)"
)
_AWS_TABLE_VIA_ENDOFLIFE: Final = (
    "endoflife-date/endoflife.date @a70eca33 (2026-08-22), products/amazon-eks.md: its "
    "release_table scrape of docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html "
    "('End of standard support', 'End of extended support'); for 1.34 and 1.35 the same dates "
    "in aws-samples.github.io/sample-apex-skills eks-operation-review cluster-lifecycle "
    "(verified 2026-04-24); each end of standard support is 14 months after its EKS release"
)


@dataclass(frozen=True)
class EksSupportWindow:
    """One minor's last days of support on EKS (UTC), with where they were read."""

    minor: str
    end_of_standard_support: date
    end_of_extended_support: date
    source: str


SUPPORT_WINDOWS: Final = {
    window.minor: window
    for window in (
        EksSupportWindow("1.31", date(2025, 11, 26), date(2026, 11, 26), _AWS_GUIDE),
        EksSupportWindow("1.32", date(2026, 3, 23), date(2027, 3, 23), _AWS_GUIDE),
        EksSupportWindow("1.33", date(2026, 7, 29), date(2027, 7, 29), _AWS_GUIDE),
        EksSupportWindow("1.34", date(2026, 12, 2), date(2027, 12, 2), _AWS_TABLE_VIA_ENDOFLIFE),
        EksSupportWindow("1.35", date(2027, 3, 27), date(2028, 3, 27), _AWS_TABLE_VIA_ENDOFLIFE),
        EksSupportWindow("1.36", date(2027, 8, 2), date(2028, 8, 2), _AWS_TABLE_VIA_ENDOFLIFE),
    )
}


def _minor_key(minor: str) -> tuple[int, ...]:
    return tuple(int(part) for part in minor.split("."))


def _how_to_move(minor: str) -> str:
    newer = [pinned for pinned in RELEASES if _minor_key(pinned) > _minor_key(minor)]
    if newer:
        return f"upgrade one minor at a time, to {newer[0]} next (README, 'Upgrading Kubernetes')"
    return (
        "upgrade one minor at a time (README, 'Upgrading Kubernetes'); no newer minor has a "
        "Cluster Autoscaler release pinned here yet (infra/kubernetes/cluster_autoscaler.py "
        "RELEASES), so add the next one first"
    )


def support_warning(minor: str, today: date) -> str | None:
    """What a preview says about ``minor``'s EKS support on ``today`` (UTC), if anything."""
    window = SUPPORT_WINDOWS.get(minor)
    how = _how_to_move(minor)
    key = f"pyscale:kubernetesVersion {minor}"
    if window is None:
        return (
            f"{key}: no EKS support dates are recorded for it (infra/kubernetes/"
            f"eks_versions.py); check `aws eks describe-cluster-versions`"
        )
    standard_end = window.end_of_standard_support.isoformat()
    if today >= window.end_of_extended_support:
        return (
            f"{key}: EKS extended support ended {window.end_of_extended_support.isoformat()} "
            "(standard support ended "
            f"{standard_end}): EKS creates no new cluster at it and upgrades existing control "
            f"planes itself, leaving node groups and add-ons behind; {how}"
        )
    if today >= window.end_of_standard_support:
        return (
            f"{key}: EKS standard support ended {standard_end}. This cluster's upgrade policy "
            "is STANDARD, so EKS upgrades its control plane to the next minor itself: the "
            "node groups and add-ons stay behind, and this pin then asks for a downgrade EKS "
            f"refuses; {how}"
        )
    days_left = (window.end_of_standard_support - today).days
    if days_left <= WARN_DAYS:
        return (
            f"{key}: EKS standard support ends {standard_end} (in {days_left} days); then EKS "
            f"upgrades this STANDARD-policy cluster's control plane itself; {how}"
        )
    return None
