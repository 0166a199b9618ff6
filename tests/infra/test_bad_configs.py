"""A corpus of bad stack configs, one rule each: each stops the real program with a clear
error naming the key and what is allowed, no traceback, before any resource exists."""

from __future__ import annotations

import pytest

from pyscale.offline import ProgramError, run_stack

# (id, stack it starts from, overrides, key the error names, words the error must say)
BAD_CONFIGS = [
    ("min-above-desired", "dev", {"minSize": 3, "maxSize": 4}, "desiredCapacity",
     "minSize <= desiredCapacity <= maxSize"),
    ("desired-above-max", "dev", {"desiredCapacity": 3}, "desiredCapacity",
     "minSize <= desiredCapacity <= maxSize"),
    ("instance-type-typo", "dev", {"instanceType": "t4g.smal"}, "instanceType",
     "did you mean t4g.small"),
    ("instance-type-macos", "dev", {"instanceType": "mac2.metal"}, "instanceType",
     "runs macOS only"),
    ("mixed-types-other-arch", "dev", {"mixedInstanceTypes": ["m7i.large"]},
     "mixedInstanceTypes", "one launch template has one AMI architecture"),
    ("warm-pool-with-spot", "dev", {"warmPool": True, "onDemandPercentAboveBase": 50},
     "warmPool", "cannot be combined with spot or mixed instances"),
    ("warm-pool-with-mixed", "dev", {"warmPool": True, "mixedInstanceTypes": ["t4g.medium"]},
     "warmPool", "cannot be combined with spot or mixed instances"),
    ("multi-az-without-replica", "dev",
     {"cacheMultiAz": True, "cacheAutomaticFailover": True}, "cacheMultiAz",
     "needs cacheReplicas >= 1"),
    ("multi-az-without-failover", "staging", {"cacheAutomaticFailover": False},
     "cacheMultiAz", "needs cacheAutomaticFailover: true"),
    ("failover-without-replica", "dev", {"cacheAutomaticFailover": True},
     "cacheAutomaticFailover", "needs cacheReplicas >= 1"),
    ("auth-without-tls", "dev", {"cacheTransitEncryption": False}, "cacheAuth",
     "needs cacheTransitEncryption: true"),
    ("cluster-mode-without-failover", "prod",
     {"cacheAutomaticFailover": False, "cacheMultiAz": False}, "cacheAutomaticFailover",
     "must be true when cacheClusterMode is true"),
    ("shards-without-cluster-mode", "dev", {"cacheShards": 3}, "cacheShards",
     "needs cacheClusterMode: true"),
    ("too-many-shards", "prod", {"cacheShards": 501}, "cacheShards", "from 1 to 500"),
    ("too-many-replicas", "staging", {"cacheReplicas": 6}, "cacheReplicas", "from 0 to 5"),
    ("cache-node-type-format", "dev", {"cacheNodeType": "t4g.micro"}, "cacheNodeType",
     "cache.<family>.<size>"),
    ("cache-engine-unknown", "dev", {"cacheEngine": "memcached"}, "cacheEngine",
     "must be one of valkey, redis"),
    ("cache-engine-version", "dev", {"cacheEngineVersion": "6.2"}, "cacheEngineVersion",
     "valkey versions are"),
    ("snapshot-window-format", "dev", {"cacheSnapshotWindow": "3am"}, "cacheSnapshotWindow",
     "hh:mm-hh:mm"),
    ("snapshot-overlaps-maintenance", "staging", {"cacheSnapshotWindow": "04:30-05:30"},
     "cacheSnapshotWindow", "overlaps cacheMaintenanceWindow"),
    ("snapshot-overlaps-maintenance-across-midnight", "staging",
     {"cacheSnapshotWindow": "23:30-00:30", "cacheMaintenanceWindow": "mon:00:00-mon:01:00"},
     "cacheSnapshotWindow", "overlaps cacheMaintenanceWindow"),
    ("maintenance-window-too-short", "dev", {"cacheMaintenanceWindow": "sun:05:00-sun:05:30"},
     "cacheMaintenanceWindow", "at least 60 minutes"),
    ("prod-without-certificate", "prod", {"domainName": "", "hostedZoneId": ""},
     "requireHttps", "set pyscale:certificateArn"),
    ("domain-without-zone", "dev", {"domainName": "app.example.org"}, "hostedZoneId",
     "must be set together"),
    ("certificate-other-region", "dev",
     {"certificateArn": "arn:aws:acm:eu-west-1:111122223333:certificate/abc-123"},
     "certificateArn", "must be in the stack's region us-east-1"),
    ("tls-policy-not-tls13", "prod", {"sslPolicy": "ELBSecurityPolicy-2016-08"}, "sslPolicy",
     "TLS 1.3 policy"),
    ("cidr-invalid", "dev", {"allowedCidrs": ["10.0.0.300/8"]}, "allowedCidrs",
     "is not an IPv4 network"),
    ("nat-strategy-typo", "dev", {"natGateways": "perAZ"}, "natGateways",
     "did you mean 'perAz'"),
    ("one-availability-zone", "dev", {"availabilityZones": 1}, "availabilityZones",
     "from 2 to 6"),
    ("vpc-cidr-too-small", "dev", {"vpcCidr": "10.0.0.0/26"}, "vpcCidr", "/16 to /22"),
    ("subnets-without-vpc", "dev", {"existingPublicSubnetIds": ["subnet-0123abcd"]},
     "existingVpcId", "is required when"),
    ("region-typo", "dev", {"aws:region": "us-eest-1"}, "aws:region", "is not an AWS region"),
    ("region-missing", "dev", {"aws:region": None}, "aws:region", "is required"),
    ("unknown-key", "dev", {"instnaceType": "t4g.small"}, "instnaceType",
     "did you mean pyscale:instanceType"),
    ("integer-not-a-number", "dev", {"minSize": "three"}, "minSize", "must be a whole number"),
    ("boolean-not-a-boolean", "dev", {"waf": "yes"}, "waf", "must be true or false"),
    ("log-retention-not-allowed", "dev", {"logRetentionDays": 10}, "logRetentionDays",
     "CloudWatch Logs"),
    ("lifetime-too-long", "dev", {"maxInstanceLifetimeDays": 400}, "maxInstanceLifetimeDays",
     "from 0 to 365"),
    ("wsgi-module-format", "dev", {"wsgiModule": "app.wsgi"}, "wsgiModule",
     "module.path:callable"),
    ("app-dir-outside-repo", "dev", {"appSourceDir": "../elsewhere"}, "appSourceDir",
     "inside the repository"),
    ("alarm-email-format", "dev", {"alarmEmail": "ops"}, "alarmEmail", "email address"),
    ("schedule-bad-cron", "dev",
     {"scheduledScaling": [{"name": "night", "recurrence": "0 20 * *", "minSize": 1,
                            "maxSize": 1, "desiredCapacity": 1}]},
     "scheduledScaling[0]", "5-field cron"),
    ("web-concurrency-negative", "dev", {"webConcurrency": -1}, "webConcurrency",
     "from 0 to 256"),
    ("waf-rate-limit-below-aws-minimum", "prod", {"wafRateLimit": 9}, "wafRateLimit",
     "from 10 to 2000000000"),
    ("default-tags-not-strings", "dev", {"aws:defaultTags": {"tags": {"Project": 7}}},
     "aws:defaultTags", "{tags: {Key: value, ...}} of strings"),
    ("default-tag-key-reserved", "dev", {"aws:defaultTags": {"tags": {"aws:owner": "me"}}},
     "aws:defaultTags", "not start with 'aws:'"),
    ("eks-add-on-version-unpinned", "dev-eks", {"eksCorednsVersion": None},
     "eksCorednsVersion", "is required on platform eks: pin the coredns add-on's version"),
    ("eks-add-on-version-format", "dev-eks", {"eksVpcCniVersion": "1.20.1"},
     "eksVpcCniVersion", "must be an EKS add-on version such as v1.2.3-eksbuild.1"),
    ("eks-no-node", "dev-eks", {"minSize": 0, "desiredCapacity": 0}, "minSize",
     "must be at least 1 on platform eks"),
    ("eks-kube-proxy-newer-than-cluster", "dev-eks", {"kubernetesVersion": "1.32"},
     "eksKubeProxyVersion", "must not be newer than the control plane"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stack", "overrides", "key", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CONFIGS],
)
def test_bad_config_is_refused_clearly_before_any_resource(stack, overrides, key, words):
    with pytest.raises(ProgramError) as failure:
        run_stack(stack, overrides)

    error = failure.value
    qualified = key if ":" in key else f"pyscale:{key}"
    assert error.clean, error.message
    assert "Traceback" not in error.message
    problem_lines = [line for line in error.message.splitlines() if line.startswith("  - ")]
    assert any(line.startswith(f"  - {qualified}:") and words in line for line in problem_lines), (
        error.message
    )
    assert error.resources == []


def test_the_corpus_covers_at_least_twenty_distinct_rules():
    assert len({case[0] for case in BAD_CONFIGS}) == len(BAD_CONFIGS) >= 20


def test_every_problem_is_reported_at_once():
    with pytest.raises(ProgramError) as failure:
        run_stack("dev", {"minSize": 5, "cacheEngine": "memcached", "sslPolicy": "old"})

    message = failure.value.message
    assert "3 configuration problems" in message
    for key in ("desiredCapacity", "cacheEngine", "sslPolicy"):
        assert f"pyscale:{key}:" in message
