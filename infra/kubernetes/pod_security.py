"""The security contexts every pod of the program runs with: Pod Security "restricted".

Non-root by numeric UID (so the kubelet can check it without a passwd entry), the
RuntimeDefault seccomp profile, no privilege escalation, every capability dropped and a
read-only root filesystem; writable paths are emptyDirs the pod declares.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s


def restricted_pod(uid: int, fs_group: bool = True) -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        fs_group=uid if fs_group else None,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def restricted_container() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )
