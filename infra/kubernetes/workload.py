"""The app on Kubernetes: Namespace, ServiceAccount, Deployment, Service, HPA and PDB.

The same app and contract as the EC2 fleet (app/contract.py: port, health and readiness
paths, variable names, the graceful timeout), shaped for a cluster:

- every object has an explicit ``metadata.name`` (the HPA's target and a TargetGroupBinding
  refer to them; Pulumi's autonaming would leave them unknown until deploy);
- the Deployment has no ``spec.replicas``: the HPA owns the replica count, and a program
  that also set it would fight the HPA on every ``pulumi up`` (server-side apply conflict
  with kube-controller-manager, pulumi/pulumi#13321);
- rolling updates never take a ready pod away before its replacement is ready
  (maxUnavailable 0), and a preStop pause lets the load balancer deregister a pod before
  gunicorn starts draining;
- requests come from the capacity plan (infra/kubernetes/capacity.py), gunicorn's workers
  from the CPU request (WEB_CONCURRENCY), because without a CPU limit there is no cgroup
  quota for gunicorn.conf.py to read;
- the pod runs as the image's numeric non-root user with a read-only root filesystem, no
  privilege escalation, every capability dropped and the RuntimeDefault seccomp profile
  (the namespace enforces Pod Security "restricted"); /tmp and the metrics directory are
  emptyDirs;
- the PDB allows one eviction at any time, and evicts unhealthy pods regardless, so it can
  never block a node-group update (an "aggressive PDB" fails a managed node group update
  after 15 minutes, EKS user guide, managed-node-update-behavior).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from app.contract import DEFAULT_PORT, GRACEFUL_TIMEOUT_SECONDS, HEALTH_PATH, READY_PATH, Env
from infra.kubernetes.capacity import CapacityPlan
from infra.kubernetes.pod_security import restricted_container, restricted_pod

APP_NAME: Final = "web"
CONTAINER_PORT_NAME: Final = "http"
SERVICE_PORT: Final = 80
# The image's user (container/Dockerfile USER).
IMAGE_UID: Final = 10001
METRICS_DIR: Final = "/var/run/pyscale-metrics"
TMP_DIR: Final = "/tmp"  # noqa: S108 (an emptyDir mounted over the read-only root)
# Long enough for the load balancer to stop sending new requests after the pod is marked
# terminating (endpoint removal reaches the ALB target group asynchronously).
PRE_STOP_SLEEP_SECONDS: Final = 10
# gunicorn's graceful drain, plus the preStop pause, plus a margin before SIGKILL.
TERMINATION_GRACE_SECONDS: Final = GRACEFUL_TIMEOUT_SECONDS + PRE_STOP_SLEEP_SECONDS + 5
ZONE_LABEL: Final = "topology.kubernetes.io/zone"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
READINESS_GATE_LABEL: Final = "elbv2.k8s.aws/pod-readiness-gate-inject"
TARGET_GROUP_BINDING_API: Final = "elbv2.k8s.aws/v1beta1"


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable read from a key of a Kubernetes Secret."""

    secret_name: pulumi.Input[str]
    key: str


@dataclass(frozen=True)
class WorkloadArgs:
    """Inputs of AppWorkload.

    namespace: the namespace to create for the app.
    image: the image reference, by digest (``repo@sha256:...``), so a new image is a new
        pod template and therefore a rolling update.
    capacity: the checked pod budget (requests, workers).
    min_replicas / max_replicas / cpu_target_percent: the HPA.
    wsgi_module: ``module:callable`` gunicorn serves.
    environment: the app's plain variables (names from app.contract.Env).
    secret_environment: variables read from Secrets (e.g. the in-cluster Valkey password).
        Listed before ``environment``, so plain values may refer to them as ``$(NAME)``.
    readiness_gates: label the namespace so the AWS Load Balancer Controller injects pod
        readiness gates (a pod counts as ready only once its ALB target is healthy).
    target_group_arn: an ``ip`` target group of the Pulumi-managed ALB; when given, a
        TargetGroupBinding has the AWS Load Balancer Controller register the Service's pods
        in it (the ALB itself stays in Pulumi state: no Ingress-made ALB to orphan).
    vpc_id: the target group's VPC (lets the controller skip looking it up via IMDS).
    service_type: the Service's type (ClusterIP behind the ALB; an existing cluster may
        expose it as NodePort or LoadBalancer).
    labels: extra labels for every object.
    """

    namespace: str
    image: pulumi.Input[str]
    capacity: CapacityPlan
    min_replicas: int
    max_replicas: int
    cpu_target_percent: int
    wsgi_module: str = "app.wsgi:app"
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    secret_environment: Mapping[str, SecretEnv] = field(default_factory=dict)
    readiness_gates: bool = False
    target_group_arn: pulumi.Input[str] | None = None
    vpc_id: pulumi.Input[str] | None = None
    service_type: str = "ClusterIP"
    labels: Mapping[str, str] = field(default_factory=dict)


class AppWorkload(pulumi.ComponentResource):
    """The app's Kubernetes objects, all bound to the given cluster provider.

    Outputs: ``namespace``, ``deployment_name``, ``service_name``, ``service_port``.
    """

    def __init__(
        self,
        name: str,
        args: WorkloadArgs,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pyscale:kubernetes:AppWorkload", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        selector = {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": name}
        labels = {**args.labels, **selector, "app.kubernetes.io/managed-by": "pulumi"}
        self.namespace_name: str = args.namespace
        self.deployment_name: str = APP_NAME
        self.service_name: str = APP_NAME
        self.service_port: int = SERVICE_PORT

        def metadata() -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=APP_NAME, namespace=args.namespace, labels=labels
            )

        namespace_labels = {
            **labels,
            # Pod Security admission: the pods below meet "restricted"; anything that
            # doesn't is refused at admission, not discovered later.
            "pod-security.kubernetes.io/enforce": "restricted",
        }
        if args.readiness_gates:
            namespace_labels[READINESS_GATE_LABEL] = "enabled"
        # Every object below is in the namespace and waits for it; the namespace waits for
        # what this component was told to follow (the LB controller's webhook, the pods'
        # Pod Identity association), so each object does, not just the component.
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.namespace, labels=namespace_labels),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=opts.depends_on if opts else None)
            ),
        )
        in_namespace = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[self.namespace])
        )
        # The pod's identity (EKS Pod Identity associates an IAM role with it). No API
        # token is mounted: the app never talks to the Kubernetes API.
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=metadata(),
            automount_service_account_token=False,
            opts=in_namespace,
        )

        pod = args.capacity.pod
        environment = [
            *(
                k8s.core.v1.EnvVarArgs(
                    name=variable,
                    value_from=k8s.core.v1.EnvVarSourceArgs(
                        secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(
                            name=source.secret_name, key=source.key
                        )
                    ),
                )
                for variable, source in sorted(args.secret_environment.items())
            ),
            k8s.core.v1.EnvVarArgs(name=Env.PORT, value=str(DEFAULT_PORT)),
            k8s.core.v1.EnvVarArgs(name=Env.WEB_CONCURRENCY, value=str(pod.workers)),
            k8s.core.v1.EnvVarArgs(name=Env.PROMETHEUS_MULTIPROC_DIR, value=METRICS_DIR),
            # The pod's name identifies the replica in logs and GET /, as the instance id does
            # on EC2.
            k8s.core.v1.EnvVarArgs(
                name=Env.INSTANCE_NAME,
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="metadata.name")
                ),
            ),
            *(
                k8s.core.v1.EnvVarArgs(name=variable, value=value)
                for variable, value in sorted(args.environment.items())
            ),
        ]
        http_get = k8s.core.v1.HTTPGetActionArgs  # probes hit the contract's paths by port name
        container = k8s.core.v1.ContainerArgs(
            name=APP_NAME,
            image=args.image,
            args=["gunicorn", "--config", "app/gunicorn.conf.py", args.wsgi_module],
            ports=[
                k8s.core.v1.ContainerPortArgs(
                    name=CONTAINER_PORT_NAME, container_port=DEFAULT_PORT, protocol="TCP"
                )
            ],
            env=environment,
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": pod.cpu, "memory": pod.memory},
                limits={"memory": pod.memory},
            ),
            startup_probe=k8s.core.v1.ProbeArgs(
                http_get=http_get(path=HEALTH_PATH, port=CONTAINER_PORT_NAME),
                period_seconds=2,
                failure_threshold=30,
            ),
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=http_get(path=READY_PATH, port=CONTAINER_PORT_NAME),
                period_seconds=5,
                failure_threshold=2,
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=http_get(path=HEALTH_PATH, port=CONTAINER_PORT_NAME),
                period_seconds=10,
                timeout_seconds=3,
                failure_threshold=3,
            ),
            lifecycle=k8s.core.v1.LifecycleArgs(
                pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                    sleep=k8s.core.v1.SleepActionArgs(seconds=PRE_STOP_SLEEP_SECONDS)
                )
            ),
            security_context=restricted_container(),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path=TMP_DIR),
                k8s.core.v1.VolumeMountArgs(name="metrics", mount_path=METRICS_DIR),
            ],
        )

        def spread(topology_key: str) -> k8s.core.v1.TopologySpreadConstraintArgs:
            # ScheduleAnyway: the autoscaler cannot pick the zone of a new node in a
            # multi-zone node group, so a hard constraint could leave pods Pending.
            # pod-template-hash: spread each ReplicaSet, so a rollout spreads too.
            return k8s.core.v1.TopologySpreadConstraintArgs(
                max_skew=1,
                topology_key=topology_key,
                when_unsatisfiable="ScheduleAnyway",
                label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                match_label_keys=["pod-template-hash"],
            )

        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata(),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_unavailable=0, max_surge="25%"
                    ),
                ),
                revision_history_limit=5,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=APP_NAME,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
                        security_context=restricted_pod(IMAGE_UID),
                        containers=[container],
                        topology_spread_constraints=[spread(ZONE_LABEL), spread(HOSTNAME_LABEL)],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="tmp",
                                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                                    medium="Memory", size_limit="64Mi"
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="metrics",
                                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                                    medium="Memory", size_limit="64Mi"
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                in_namespace, pulumi.ResourceOptions(depends_on=[self.service_account])
            ),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(),
            spec=k8s.core.v1.ServiceSpecArgs(
                type=args.service_type,
                selector=selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name=CONTAINER_PORT_NAME,
                        port=SERVICE_PORT,
                        target_port=CONTAINER_PORT_NAME,
                        protocol="TCP",
                    )
                ],
            ),
            opts=in_namespace,
        )
        self.autoscaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=metadata(),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=APP_NAME
                ),
                min_replicas=args.min_replicas,
                max_replicas=args.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=args.cpu_target_percent
                            ),
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions.merge(
                in_namespace, pulumi.ResourceOptions(depends_on=[self.deployment])
            ),
        )
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=metadata(),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=in_namespace,
        )
        self.target_group_binding: k8s.apiextensions.CustomResource | None = None
        if args.target_group_arn is not None:
            binding: dict[str, object] = {
                "serviceRef": {"name": APP_NAME, "port": SERVICE_PORT},
                "targetGroupARN": args.target_group_arn,
                "targetType": "ip",
            }
            if args.vpc_id is not None:
                binding["vpcID"] = args.vpc_id
            self.target_group_binding = k8s.apiextensions.CustomResource(
                f"{name}-target-group-binding",
                api_version=TARGET_GROUP_BINDING_API,
                kind="TargetGroupBinding",
                metadata=metadata(),
                spec=binding,
                opts=pulumi.ResourceOptions.merge(
                    in_namespace, pulumi.ResourceOptions(depends_on=[self.service])
                ),
            )
        self.register_outputs(
            {
                "namespace": self.namespace_name,
                "deployment_name": self.deployment_name,
                "service_name": self.service_name,
                "service_port": self.service_port,
            }
        )
