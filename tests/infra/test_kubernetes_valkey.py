"""The in-cluster Valkey (infra/kubernetes/valkey.py) with the app that uses it, under the
offline mocks: every object strictly valid, the password generated, kept secret, and
reaching the app only through the environment."""

from __future__ import annotations

import pulumi_kubernetes as k8s
import pytest

from app.contract import Env
from infra.kubernetes.capacity import plan_capacity
from infra.kubernetes.valkey import PASSWORD_KEY, VALKEY_PORT, InClusterValkey, ValkeyArgs
from infra.kubernetes.workload import AppWorkload, SecretEnv, WorkloadArgs
from pyscale.offline.kubernetes import PROVIDER_TYPE, kubernetes_objects, validate_strictly
from pyscale.offline.runner import ProgramRun, is_secret, run_function

VALKEY_IMAGE = "docker.io/valkey/valkey:8.1@sha256:" + "c" * 64


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    def build() -> None:
        provider = k8s.Provider("cluster", kubeconfig="{}", cluster_identifier="existing")
        cache = InClusterValkey(
            "cache", ValkeyArgs(namespace="pyscale", image=VALKEY_IMAGE), provider
        )
        AppWorkload(
            "app",
            WorkloadArgs(
                namespace="pyscale",
                image="registry.example/pyscale@sha256:" + "a" * 64,
                capacity=plan_capacity("m7g.large", pods_per_node=2, max_nodes=3, max_replicas=4),
                min_replicas=2,
                max_replicas=4,
                cpu_target_percent=60,
                secret_environment={"REDIS_PASSWORD": SecretEnv(cache.secret_name, PASSWORD_KEY)},
                environment={Env.REDIS_URL: cache.url_template},
            ),
            provider,
        )

    return run_function(build)


def objects_of(run: ProgramRun, kind: str, name: str = "valkey"):
    return next(o for o in kubernetes_objects(run) if o.kind == kind and o.name == name)


def test_every_object_validates_strictly(run):
    for item in kubernetes_objects(run):
        validate_strictly(item.manifest, "1.33")


def test_every_object_is_bound_to_the_clusters_provider(run):
    provider = run.one(PROVIDER_TYPE)
    for item in kubernetes_objects(run):
        assert item.resource.options.provider.startswith(provider.urn + "::"), item.kind


def test_the_password_is_generated_and_stays_secret_in_state(run):
    secret = objects_of(run, "Secret")
    # The engine gets the whole stringData as a secret: encrypted in state, masked in diffs.
    assert is_secret(secret.resource.inputs["stringData"])
    assert list(secret.manifest["stringData"]) == [PASSWORD_KEY]
    password = run.one("random:index/randomPassword:RandomPassword")
    assert password.inputs["special"] is False  # it sits unescaped inside REDIS_URL


def test_the_app_reaches_valkey_through_its_environment(run):
    container = objects_of(run, "Deployment", "web").manifest["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {item["name"]: item for item in container["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": objects_of(run, "Secret").name,
        "key": PASSWORD_KEY,
    }
    service = objects_of(run, "Service")
    assert env[Env.REDIS_URL]["value"] == (
        f"redis://:$(REDIS_PASSWORD)@{service.name}.pyscale.svc.cluster.local:{VALKEY_PORT}/0"
    )


def test_valkey_runs_as_a_cache_inside_its_memory_limit(run):
    spec = objects_of(run, "StatefulSet").manifest["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == VALKEY_IMAGE
    assert (
        container["resources"]["limits"]["memory"] == container["resources"]["requests"]["memory"]
    )
    arguments = container["args"]
    assert arguments[arguments.index("--save") + 1] == ""
    assert arguments[arguments.index("--maxmemory-policy") + 1] == "allkeys-lru"
    assert arguments[arguments.index("--requirepass") + 1] == "$(VALKEY_PASSWORD)"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["serviceName"] == objects_of(run, "Service").name


def test_the_service_is_headless_and_the_pdb_never_blocks_a_drain(run):
    assert objects_of(run, "Service").manifest["spec"]["clusterIP"] == "None"
    assert objects_of(run, "PodDisruptionBudget").manifest["spec"]["maxUnavailable"] == 1
