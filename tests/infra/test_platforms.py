"""Every platform through the real entry point (infra/__main__.py under the offline mocks):
the eks and kubernetes stacks register what their platform needs and nothing of the
others; every Kubernetes object is strictly valid at the stack's version, refers to objects
that exist, and is bound to the cluster's provider; bad input is refused before any
resource, one line per problem."""

from __future__ import annotations

import json

import pytest

from app.contract import DEFAULT_PORT, Env
from infra.kubernetes.addon_versions import listed_versions
from infra.kubernetes.image_repository import repository_name
from infra.settings.platform import ADDON_VERSION_KEYS
from pyscale import stacks
from pyscale.offline import ProgramError, ProgramRun, run_stack
from pyscale.offline.kubernetes import PROVIDER_TYPE, kubernetes_objects, validate_strictly
from pyscale.offline.runner import EKS_STAND_IN_DIGEST
from tests.infra.conftest import KUBERNETES_STACKS, STACKS

NUMBERS_AND_LISTS = frozenset(
    {"minSize", "desiredCapacity", "maxSize", "hpaMinReplicas", "hpaMaxReplicas",
     "eksPublicAccessCidrs"}
)  # fmt: skip
EKS_CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"


def configured(stack: str, key: str):
    """The stack file's value, else the key's default (as the program reads it)."""
    raw = stacks.engine_config(stack)[f"pyscale:{key}"]
    return json.loads(raw) if key in NUMBERS_AND_LISTS else raw


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_of_every_platform_runs_through_the_real_entry_point(shipped_run, stack):
    run = shipped_run(stack)
    assert run.resources
    # Only the shipped EXAMPLE values (prod's certificate) may be warned about, and an eks
    # stack's Kubernetes version nearing or past its EKS standard support (dated by the day
    # the run happens: tests/infra/test_kubernetes_versions.py pins the day).
    assert all(
        "EXAMPLE" in warning or warning.startswith("pyscale:kubernetesVersion ")
        for warning in run.warnings
    ), run.warnings


@pytest.mark.parametrize("stack", KUBERNETES_STACKS)
def test_every_kubernetes_object_validates_strictly_at_the_stacks_version(shipped_run, stack):
    objects = kubernetes_objects(shipped_run(stack))
    assert objects
    for item in objects:
        validate_strictly(item.manifest, str(configured(stack, "kubernetesVersion")))


@pytest.mark.parametrize("stack", KUBERNETES_STACKS)
def test_every_kubernetes_object_is_bound_to_the_clusters_provider(shipped_run, stack):
    run = shipped_run(stack)
    providers = run.of_type(PROVIDER_TYPE)
    assert len(providers) == 1
    for item in kubernetes_objects(run):
        assert item.resource.options.provider.startswith(providers[0].urn + "::"), item.name
    for release in run.of_type("kubernetes:helm.sh/v3:Release"):
        assert release.options.provider.startswith(providers[0].urn + "::")


@pytest.mark.parametrize("stack", KUBERNETES_STACKS)
def test_the_hpa_targets_the_apps_deployment_and_follows_the_stack(shipped_run, stack):
    objects = {(o.kind, o.name): o.manifest for o in kubernetes_objects(shipped_run(stack))}
    hpa = objects[("HorizontalPodAutoscaler", "web")]["spec"]
    assert ("Deployment", hpa["scaleTargetRef"]["name"]) in objects
    assert hpa["minReplicas"] == configured(stack, "hpaMinReplicas")
    assert hpa["maxReplicas"] == configured(stack, "hpaMaxReplicas")
    assert "replicas" not in objects[("Deployment", "web")]["spec"]


def eks(shipped_run) -> ProgramRun:
    return shipped_run("dev-eks")


def test_eks_builds_the_cluster_from_primitives_with_the_stacks_version(shipped_run):
    cluster = eks(shipped_run).one(EKS_CLUSTER).inputs
    assert cluster["version"] == configured("dev-eks", "kubernetesVersion")
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    assert cluster["vpcConfig"]["publicAccessCidrs"] == configured(
        "dev-eks", "eksPublicAccessCidrs"
    )
    assert not eks(shipped_run).of_type("eks:index:Cluster")  # no pulumi-eks component


def test_eks_node_groups_are_the_stacks_instance_type_and_sizes(shipped_run):
    group = eks(shipped_run).one(NODE_GROUP).inputs
    assert group["instanceTypes"] == [configured("dev-eks", "instanceType")]
    assert group["scalingConfig"] == {
        "minSize": configured("dev-eks", "minSize"),
        "desiredSize": configured("dev-eks", "desiredCapacity"),
        "maxSize": configured("dev-eks", "maxSize"),
    }


def test_eks_add_ons_are_the_stacks_pins_never_a_default_looked_up_at_deploy(shipped_run):
    run = eks(shipped_run)
    addons = {
        r.inputs["addonName"]: r.inputs["addonVersion"] for r in run.of_type("aws:eks/addon:Addon")
    }
    assert addons == {name: configured("dev-eks", key) for name, key in ADDON_VERSION_KEYS.items()}
    # A default would move under the stack (EKS changes it): nothing asks EKS for one.
    assert not [call for call in run.data_source_calls if "getAddonVersion" in call[0]]


def test_eks_refuses_an_add_on_version_not_listed_for_the_cluster_version_as_eks_does():
    # GIVEN dev-eks with coredns pinned at a version EKS lists for 1.32 only
    older = listed_versions("coredns", "1.32")[-1]
    assert older not in listed_versions("coredns", configured("dev-eks", "kubernetesVersion"))
    # THEN CreateAddon's error, naming the add-on and the version
    with pytest.raises(ProgramError, match="Addon version specified is not supported") as error:
        run_stack("dev-eks", {"eksCorednsVersion": older})
    assert f"(coredns {older};" in error.value.message
    # and the next run in this process starts clean (the failed run's registrations settled)
    assert run_stack("dev-eks").of_type("aws:eks/addon:Addon")


def test_eks_pods_join_the_albs_ip_target_group_through_a_binding(shipped_run):
    run = eks(shipped_run)
    target_group = run.one(TARGET_GROUP)
    assert target_group.inputs["targetType"] == "ip"
    assert target_group.inputs["port"] == DEFAULT_PORT
    objects = {(o.kind, o.name): o.manifest for o in kubernetes_objects(run)}
    binding = objects[("TargetGroupBinding", "web")]["spec"]
    assert binding["targetGroupARN"] == target_group.outputs["arn"]
    service = objects[("Service", binding["serviceRef"]["name"])]
    assert binding["serviceRef"]["port"] == service["spec"]["ports"][0]["port"]
    # The controller's webhook must answer before the binding is applied.
    resource = next(o.resource for o in kubernetes_objects(run) if o.kind == "TargetGroupBinding")
    assert run.is_created_after(resource, run.one("kubernetes:helm.sh/v3:Release"))


def test_eks_lets_the_alb_reach_the_pods_and_the_pods_reach_the_cache(shipped_run):
    run = eks(shipped_run)
    cluster_group = run.one(EKS_CLUSTER).outputs["vpcConfig"]["clusterSecurityGroupId"]
    rules = {r.name: r.inputs for r in run.resources if r.type.startswith("aws:vpc/securityGroup")}
    assert rules["pyscale-dev-eks-alb-to-pods"]["securityGroupId"] == cluster_group
    assert rules["pyscale-dev-eks-alb-to-pods"]["fromPort"] == DEFAULT_PORT
    assert rules["pyscale-dev-eks-alb-out-to-pods"]["referencedSecurityGroupId"] == cluster_group
    assert rules["pyscale-dev-eks-pods-to-cache"]["referencedSecurityGroupId"] == cluster_group


def test_eks_the_apps_pod_role_reads_exactly_the_cache_secret(shipped_run):
    run = eks(shipped_run)
    secret_arn = run.stack_outputs["cacheAuthSecretArn"]
    policy = next(
        r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if "app-identity" in r.name
    )
    assert json.loads(policy.inputs["policy"])["Statement"] == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}
    ]
    association = next(
        r
        for r in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if r.inputs["serviceAccount"] == "web"
    )
    assert association.inputs["namespace"] == "pyscale"
    deployment = next(
        o for o in kubernetes_objects(run) if o.kind == "Deployment" and o.name == "web"
    )
    # EKS injects a pod's credentials when the pod is created: only if the association
    # exists by then does the app read its secret without a restart.
    assert run.is_created_after(deployment.resource, association)
    container = deployment.manifest["spec"]["template"]["spec"]["containers"][0]
    environment = {item["name"]: item.get("value") for item in container["env"]}
    assert environment[Env.REDIS_AUTH_SECRET_ARN] == secret_arn
    assert environment[Env.REDIS_URL].startswith("rediss://")
    # The deploy passes the commit's image by digest; offline, a stand-in in the stack's repository.
    repository = run.stack_outputs["imageRepositoryUrl"]
    assert container["image"] == f"{repository}@{EKS_STAND_IN_DIGEST}"
    assert run.stack_outputs["appImage"] == container["image"]


@pytest.mark.parametrize("stack", stacks.stacks_on("eks"))
def test_an_eks_stack_file_pins_no_image_the_deploy_would_roll_back_to(stack):
    assert "pyscale:appImage" not in stacks.stack_values(stack)


def test_the_deploy_workflow_finds_the_repository_the_program_names(shipped_run):
    run = eks(shipped_run)
    repository = run.one("aws:ecr/repository:Repository")
    assert repository.inputs["name"] == repository_name("pyscale-dev-eks")


def test_eks_without_an_image_builds_the_cluster_and_says_what_to_push(shipped_run):
    run = run_stack("dev-eks", {"appImage": ""})
    assert run.one(EKS_CLUSTER)
    assert not [o for o in kubernetes_objects(run) if o.kind == "Deployment" and o.name == "web"]
    assert any("pyscale:appImage is empty" in warning for warning in run.warnings)
    assert "appImage" not in run.stack_outputs  # a preview then keeps no image either


def test_eks_runs_no_ec2_fleet_and_ec2_runs_no_cluster(shipped_run):
    assert not eks(shipped_run).of_type("aws:autoscaling/group:Group")
    assert not shipped_run("dev").of_type(EKS_CLUSTER)
    assert not kubernetes_objects(shipped_run("dev"))


def test_an_existing_cluster_gets_kubernetes_objects_only(shipped_run):
    run = shipped_run("dev-k8s")
    assert [r.type for r in run.resources if r.type.startswith("aws:")] == []
    provider = run.one(PROVIDER_TYPE)
    assert provider.inputs["clusterIdentifier"] == configured("dev-k8s", "clusterIdentifier")
    assert provider.inputs["kubeconfig"]["value"]  # a secret: encrypted in state
    kinds = sorted({o.kind for o in kubernetes_objects(run)})
    assert "StatefulSet" in kinds  # the in-cluster Valkey
    service = next(o for o in kubernetes_objects(run) if o.kind == "Service" and o.name == "web")
    assert service.manifest["spec"]["type"] == configured("dev-k8s", "serviceType")


def test_an_external_redis_url_reaches_the_app_from_a_secret_not_the_spec():
    url = "rediss://:hunter2@redis.example.com:6380/0"
    run = run_stack("dev-k8s", {"valkeyImage": "", "redisUrl": url})
    assert not [o for o in kubernetes_objects(run) if o.kind == "StatefulSet"]
    assert url not in json.dumps(
        [o.manifest for o in kubernetes_objects(run) if o.kind != "Secret"]
    )
    container = next(o for o in kubernetes_objects(run) if o.kind == "Deployment").manifest["spec"][
        "template"
    ]["spec"]["containers"][0]
    redis_url = next(item for item in container["env"] if item["name"] == Env.REDIS_URL)
    assert redis_url["valueFrom"]["secretKeyRef"]["key"] == "url"


BAD_INPUT = [
    ("unknown-platform", "dev", {"platform": "ecs"}, "platform",
     "must be one of ec2, eks, kubernetes"),
    ("eks-key-on-ec2", "dev", {"eksSpotMaxSize": 3, "eksSpotInstanceTypes": ["t4g.medium"]},
     "eksSpotMaxSize", "is not used on platform ec2"),
    ("ec2-key-on-eks", "dev-eks", {"warmPool": True}, "warmPool", "is not used on platform eks"),
    ("impossible-pod-budget", "dev-eks", {"podsPerNode": 20}, "podsPerNode", "do not fit"),
    ("hpa-beyond-nodes", "dev-eks", {"hpaMaxReplicas": 40}, "hpaMaxReplicas", "allocate"),
    ("missing-kubeconfig", "dev-k8s", {"kubeconfig": None}, "kubeconfig", "is required"),
    ("two-caches", "dev-k8s", {"redisUrl": "redis://r:6379"}, "redisUrl", "exactly one"),
    ("open-api", "dev-eks", {"eksPublicAccessCidrs": ["0.0.0.0/0"]}, "eksPublicAccessCidrs",
     "opens the cluster API"),
    ("unpinned-autoscaler", "dev-eks", {"kubernetesVersion": "1.29"}, "kubernetesVersion",
     "Cluster Autoscaler release"),
    ("image-by-tag", "dev-eks", {"appImage": "pyscale:latest"}, "appImage", "by digest"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "words"), [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUT]
)
def test_bad_platform_input_is_one_clear_line_and_no_resource(stack, overrides, key, words):
    with pytest.raises(ProgramError) as failure:
        run_stack(stack, overrides)
    error = failure.value
    assert error.clean, error.message
    assert "Traceback" not in error.message
    lines = [line for line in error.message.splitlines() if line.startswith("  - ")]
    assert any(line.startswith(f"  - pyscale:{key}:") and words in line for line in lines), (
        error.message
    )
    assert error.resources == []
