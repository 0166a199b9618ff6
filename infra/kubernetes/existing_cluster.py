"""The kubernetes platform: the app (and, without an external Redis, a Valkey) deployed to a
cluster the stack does not own, through a provider built from a secret kubeconfig.

``clusterIdentifier`` names the cluster for the provider: without it, any change of the
kubeconfig text (a rotated token, a new CA or endpoint) would replace the provider and
with it every object on it (pulumi-kubernetes#4019); with it, only a new identifier does.
An external ``redisUrl`` is a secret: it reaches the app from a Kubernetes Secret, never in
the Deployment's spec. The in-cluster Valkey is created in the app's namespace once that
exists; until its Secret does, the app's pods wait in CreateContainerConfigError (the
Deployment's rollout waits with them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from app.contract import Env
from infra.kubernetes import valkey
from infra.kubernetes.capacity import CapacityPlan
from infra.kubernetes.workload import AppWorkload, SecretEnv, WorkloadArgs
from infra.settings import FleetSettings, ReleaseSettings
from infra.settings.platform import PlatformSettings

EXTERNAL_CACHE_SECRET: Final = "pyscale-cache"  # noqa: S105 (the Secret's name)
EXTERNAL_CACHE_KEY: Final = "url"
PASSWORD_VARIABLE: Final = "REDIS_PASSWORD"  # noqa: S105 (a variable name)


@dataclass(frozen=True)
class ExistingClusterArgs:
    """Inputs of ExistingClusterPlatform: the settings of those areas and the pod budget.
    The settings guarantee kubeconfig, clusterIdentifier, appImage and one cache."""

    platform: PlatformSettings
    fleet: FleetSettings
    release: ReleaseSettings
    capacity: CapacityPlan


class ExistingClusterPlatform(pulumi.ComponentResource):
    """Attributes: ``provider``, ``workload``. Outputs: ``namespace``, ``service_name``."""

    def __init__(
        self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:kubernetes:ExistingClusterPlatform", name, None, opts)
        platform = args.platform
        missing = [
            key
            for key, value in (
                ("kubeconfig", platform.kubeconfig),
                ("clusterIdentifier", platform.cluster_identifier),
                ("appImage", platform.app_image),
            )
            if value is None
        ]
        if missing:  # the settings refuse this already; a component used alone must too
            raise ValueError(f"platform kubernetes needs {', '.join(missing)}")
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(str(platform.kubeconfig)),
            cluster_identifier=str(platform.cluster_identifier),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if platform.redis_url is not None:
            environment: dict[str, pulumi.Input[str]] = {}
            secrets = {Env.REDIS_URL: SecretEnv(EXTERNAL_CACHE_SECRET, EXTERNAL_CACHE_KEY)}
        else:
            environment = {Env.REDIS_URL: valkey.url_template(platform.namespace)}
            secrets = {PASSWORD_VARIABLE: SecretEnv(valkey.OBJECT_NAME, valkey.PASSWORD_KEY)}
        self.workload = AppWorkload(
            f"{name}-app",
            WorkloadArgs(
                namespace=platform.namespace,
                image=str(platform.app_image),
                capacity=args.capacity,
                min_replicas=platform.hpa_min_replicas,
                max_replicas=platform.hpa_max_replicas,
                cpu_target_percent=args.fleet.cpu_target_percent,
                wsgi_module=args.release.wsgi_module,
                environment=environment,
                secret_environment=secrets,
                service_type=platform.service_type.value,
            ),
            self.provider,
            pulumi.ResourceOptions(parent=self),
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.workload.namespace])
        if platform.redis_url is not None:
            k8s.core.v1.Secret(
                f"{name}-cache-url",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=EXTERNAL_CACHE_SECRET, namespace=platform.namespace
                ),
                type="Opaque",
                string_data={EXTERNAL_CACHE_KEY: pulumi.Output.secret(platform.redis_url)},
                opts=pulumi.ResourceOptions.merge(
                    in_namespace, pulumi.ResourceOptions(provider=self.provider)
                ),
            )
        else:
            valkey.InClusterValkey(
                f"{name}-valkey",
                valkey.ValkeyArgs(namespace=platform.namespace, image=str(platform.valkey_image)),
                self.provider,
                in_namespace,
            )
        self.register_outputs(
            {"namespace": platform.namespace, "service_name": self.workload.service_name}
        )
