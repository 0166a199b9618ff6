"""An in-cluster Valkey for the kubernetes platform (an existing cluster without a managed
cache): one StatefulSet pod, a headless Service, a PDB, and a generated password kept in a
Kubernetes Secret that reaches the app through its environment.

Typed objects, not a Helm chart: every field is visible to the tests and the policy pack
(Bitnami's free chart catalogue, the usual source, was withdrawn in 2025). It is a cache,
not a database: no persistence (``--save ""``, no AOF), an LRU eviction policy inside the
memory limit, so a restart costs only cold reads. The image is the official one, by digest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.kubernetes.pod_security import restricted_container, restricted_pod

VALKEY_PORT: Final = 6379
PASSWORD_KEY: Final = "password"  # noqa: S105 (the Secret's key name, not a secret)
PASSWORD_LENGTH: Final = 32
# The official image's user (valkey, uid 999 in the Debian-based images).
VALKEY_UID: Final = 999
# Valkey's own use beyond the data set (buffers, fragmentation): maxmemory is this share of
# the container's memory limit, so eviction starts before the kernel's OOM killer would.
MAXMEMORY_SHARE: Final = 0.75
OBJECT_NAME: Final = "valkey"  # the StatefulSet, its Service, Secret and PDB


def host(namespace: str) -> str:
    return f"{OBJECT_NAME}.{namespace}.svc.cluster.local"


def url_template(namespace: str) -> str:
    """The app's REDIS_URL; Kubernetes expands $(REDIS_PASSWORD) from the Secret."""
    return f"redis://:$(REDIS_PASSWORD)@{host(namespace)}:{VALKEY_PORT}/0"


@dataclass(frozen=True)
class ValkeyArgs:
    """Inputs of InClusterValkey.

    namespace: where it runs (the app's namespace, created by AppWorkload).
    image: the official image by digest (``docker.io/valkey/valkey:<tag>@sha256:...``).
    cpu / memory_mib: the pod's request; memory is also its limit.
    labels: extra labels for every object.
    """

    namespace: str
    image: str
    cpu: str = "250m"
    memory_mib: int = 512
    labels: Mapping[str, str] = field(default_factory=dict)


class InClusterValkey(pulumi.ComponentResource):
    """Valkey in the cluster. ``url_template`` is the REDIS_URL for the app, with the
    password as ``$(REDIS_PASSWORD)``, which Kubernetes expands from ``secret_name``'s
    ``password`` key (the app's Deployment lists that variable first).

    Outputs: ``host``, ``port``, ``secret_name``."""

    def __init__(
        self,
        name: str,
        args: ValkeyArgs,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pyscale:kubernetes:InClusterValkey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        selector = {"app.kubernetes.io/name": "valkey", "app.kubernetes.io/instance": name}
        labels = {**args.labels, **selector, "app.kubernetes.io/managed-by": "pulumi"}
        object_name = OBJECT_NAME
        self.secret_name: str = object_name
        self.host: str = host(args.namespace)
        self.port: int = VALKEY_PORT
        self.url_template: str = url_template(args.namespace)

        def metadata() -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=args.namespace, labels=labels
            )

        # Letters and digits only: the password sits inside REDIS_URL unescaped.
        password = random.RandomPassword(
            f"{name}-password", length=PASSWORD_LENGTH, special=False, opts=child
        )
        # Its own statement: inside string_data's Input[...] context mypy infers
        # Output.secret's type variable as Never.
        password_value: pulumi.Output[str] = pulumi.Output.secret(password.result)
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=metadata(),
            type="Opaque",
            string_data={PASSWORD_KEY: password_value},
            opts=child,
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",  # headless: the name resolves to the pod itself
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="valkey", port=VALKEY_PORT, target_port="valkey", protocol="TCP"
                    )
                ],
            ),
            opts=child,
        )
        memory = f"{args.memory_mib}Mi"
        maxmemory_mib = math.floor(args.memory_mib * MAXMEMORY_SHARE)
        probe = k8s.core.v1.ProbeArgs(
            tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="valkey"), period_seconds=10
        )
        self.stateful_set = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=metadata(),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name=object_name,
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        automount_service_account_token=False,
                        enable_service_links=False,
                        security_context=restricted_pod(VALKEY_UID),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="valkey",
                                image=args.image,
                                command=["valkey-server"],
                                args=[
                                    "--requirepass",
                                    "$(VALKEY_PASSWORD)",
                                    "--save",
                                    "",
                                    "--appendonly",
                                    "no",
                                    "--maxmemory",
                                    f"{maxmemory_mib}mb",
                                    "--maxmemory-policy",
                                    "allkeys-lru",
                                ],
                                env=[
                                    k8s.core.v1.EnvVarArgs(
                                        name="VALKEY_PASSWORD",
                                        value_from=k8s.core.v1.EnvVarSourceArgs(
                                            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(
                                                name=object_name, key=PASSWORD_KEY
                                            )
                                        ),
                                    )
                                ],
                                ports=[
                                    k8s.core.v1.ContainerPortArgs(
                                        name="valkey", container_port=VALKEY_PORT, protocol="TCP"
                                    )
                                ],
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": args.cpu, "memory": memory},
                                    limits={"memory": memory},
                                ),
                                readiness_probe=probe,
                                liveness_probe=probe,
                                security_context=restricted_container(),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="data", mount_path="/data")
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="data", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[self.secret, self.service])
            ),
        )
        # One replica: the budget must still allow its eviction, or it would block every
        # node drain; the app rides out the restart (its Redis circuit breaker).
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=metadata(),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
            ),
            opts=child,
        )
        self.register_outputs(
            {"host": self.host, "port": self.port, "secret_name": self.secret_name}
        )
