"""Flow logs: every accepted and rejected connection of the stack's VPC, to CloudWatch Logs.

With ``flowLogs`` (infra/settings/network.py; on in prod as shipped) the VPC's traffic
(``traffic_type`` ALL) goes to a log group kept ``logRetentionDays`` and encrypted with
the stack key when ``customerManagedKey`` is on, through a role only this account's flow
logs may assume (the ``aws:SourceAccount``/``aws:SourceArn`` conditions against the
confused deputy). An adopted VPC's owner keeps its own flow logs: nothing is created.

A component of its own, built after the stack key (which the log group may use), which
comes after the network: its availability-zone check must run before any resource is
registered. The program builds it only where it creates something.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.regions import partition_of
from infra.settings import NetworkSettings


@dataclass(frozen=True)
class FlowLogsArgs:
    """settings: the network keys (the program builds FlowLogs only when flowLogs is on and
    the VPC is not adopted). vpc_id: the stack's VPC. region/account_id: where the role
    may be assumed from.
    log_retention_days / log_key_arn: the log group's retention and KMS key (None:
    CloudWatch Logs' own encryption)."""

    settings: NetworkSettings
    vpc_id: pulumi.Input[str]
    region: str
    account_id: str
    log_retention_days: int
    log_key_arn: pulumi.Input[str] | None


class FlowLogs(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: FlowLogsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pyscale:network:FlowLogs", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.log_group_name = self._create(args.vpc_id)
        self.register_outputs({"logGroupName": self.log_group_name})

    def _create(self, vpc_id: pulumi.Input[str]) -> pulumi.Output[str]:
        """All traffic of the VPC to a log group, through a role only the flow logs service
        of this account may assume (AWS's confused-deputy conditions)."""
        args, partition = self._args, partition_of(self._args.region)
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-flow-logs",
            name=f"/pyscale/{self._name}/vpc-flow-logs",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_key_arn,
            opts=self._child,
        )
        role = aws.iam.Role(
            f"{self._name}-flow-logs",
            description=f"VPC flow logs of {self._name} to CloudWatch Logs",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": args.account_id},
                                "ArnLike": {
                                    "aws:SourceArn": f"arn:{partition}:ec2:{args.region}:"
                                    f"{args.account_id}:vpc-flow-log/*"
                                },
                            },
                        }
                    ],
                }
            ),
            opts=self._child,
        )
        delivery = aws.iam.RolePolicy(
            f"{self._name}-flow-logs",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "WriteTheFlowLogGroup",
                            "Effect": "Allow",
                            "Action": [
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:DescribeLogStreams",
                            ],
                            "Resource": [
                                log_group.arn,
                                pulumi.Output.concat(log_group.arn, ":*"),
                            ],
                        },
                        {
                            "Sid": "FindTheLogGroup",
                            "Effect": "Allow",
                            "Action": "logs:DescribeLogGroups",
                            "Resource": f"arn:{partition}:logs:{args.region}:"
                            f"{args.account_id}:log-group:*",
                        },
                    ],
                }
            ),
            opts=self._child,
        )
        aws.ec2.FlowLog(
            f"{self._name}-flow-logs",
            vpc_id=vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            tags={"Name": f"{self._name}-flow-logs"},
            # The first deliveries would fail while the role cannot write yet.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[delivery]),
        )
        return log_group.name
