"""Security groups: the chain internet -> ALB -> app fleet -> cache, and nothing else.

All three groups live here, with every rule as its own resource, because the chain refers
both ways (the ALB's egress names the fleet's group, the fleet's ingress names the ALB's):
inline rules would make the groups depend on each other. The load balancer, the fleet and
the cache take their group's id from this component.

- ALB: ingress on the listener ports from the allowed CIDRs; egress to the fleet's app port.
- fleet: ingress on the app port from the ALB only; egress to the cache port of the cache
  group, and HTTPS to anywhere (Secrets Manager, SSM, CloudWatch and package repositories
  through NAT or the S3 endpoint). No SSH: instances are reached with SSM Session Manager.
- cache: ingress on the cache port from the fleet only; no egress.
(The AWS provider removes the allow-all egress AWS adds to a new group.)
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app.contract import DEFAULT_PORT
from infra.settings import CacheSettings, EdgeSettings

HTTPS_PORT = 443


@dataclass(frozen=True)
class SecurityGroupsArgs:
    """``vpc_id``: the network's VPC. ``edge``: the listener ports (80, or 80 and 443) and
    the IPv4 ranges admitted to them. ``cache``: the cache's port. ``app_port``: the app's
    port (app.contract.DEFAULT_PORT, the contract, not a setting)."""

    vpc_id: pulumi.Input[str]
    edge: EdgeSettings
    cache: CacheSettings
    app_port: int = DEFAULT_PORT


class SecurityGroups(pulumi.ComponentResource):
    alb_security_group_id: pulumi.Output[str]
    fleet_security_group_id: pulumi.Output[str]
    cache_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:network:SecurityGroups", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        alb = self._group("alb", "Application Load Balancer: listener ports only", args.vpc_id)
        fleet = self._group("fleet", "App instances: the ALB on the app port only", args.vpc_id)
        cache = self._group(
            "cache", "ElastiCache: the app fleet on the cache port only", args.vpc_id
        )

        for port in args.edge.listener_ports:
            for index, cidr in enumerate(args.edge.allowed_cidrs):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-alb-in-{port}-{index}",
                    security_group_id=alb.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=cidr,
                    description=f"Clients to listener port {port}",
                    opts=self._child,
                )
        self._link(alb, fleet, args.app_port, "alb-to-fleet", "ALB to the app port")
        self._link(fleet, cache, args.cache.port, "fleet-to-cache", "App to the cache")
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-fleet-out-https",
            security_group_id=fleet.id,
            ip_protocol="tcp",
            from_port=HTTPS_PORT,
            to_port=HTTPS_PORT,
            cidr_ipv4="0.0.0.0/0",
            description="AWS APIs (Secrets Manager, SSM, CloudWatch) and package repositories",
            opts=self._child,
        )
        self.alb_security_group_id = alb.id
        self.fleet_security_group_id = fleet.id
        self.cache_security_group_id = cache.id
        self.register_outputs(
            {
                "albSecurityGroupId": alb.id,
                "fleetSecurityGroupId": fleet.id,
                "cacheSecurityGroupId": cache.id,
            }
        )

    def _group(
        self, role: str, description: str, vpc_id: pulumi.Input[str]
    ) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            f"{self._name}-{role}",
            description=description,
            vpc_id=vpc_id,
            tags={"Name": f"{self._name}-{role}"},
            opts=self._child,
        )

    def _link(
        self,
        source: aws.ec2.SecurityGroup,
        target: aws.ec2.SecurityGroup,
        port: int,
        label: str,
        description: str,
    ) -> None:
        """Allow ``source`` to reach ``target`` on ``port``: egress on one, ingress on the other."""
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-{label}-out",
            security_group_id=source.id,
            referenced_security_group_id=target.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            opts=self._child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-{label}-in",
            security_group_id=target.id,
            referenced_security_group_id=source.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            opts=self._child,
        )
