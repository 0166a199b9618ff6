"""Creation order as `pulumi up` enforces it: only what each registration's dependencies
(explicit ``depends_on`` and the resources its inputs come from) and custom parents imply.
Registration order under the mocks proves nothing: the real engine creates everything else
concurrently. ``ProgramRun.created_after`` is that closure; these specs state the orderings
AWS needs."""

from __future__ import annotations

from pyscale.offline import ProgramRun, RecordedResource, ResourceOptionsRecord

NAT = "aws:ec2/natGateway:NatGateway"
IGW = "aws:ec2/internetGateway:InternetGateway"
ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
POLICY = "aws:autoscaling/policy:Policy"
LISTENER = "aws:lb/listener:Listener"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
ALB = "aws:lb/loadBalancer:LoadBalancer"


def _resource(name: str, *, custom: bool = True, parent: str | None = None, deps=()):
    return RecordedResource(
        urn=f"urn:{name}",
        id=name if custom else None,
        type="test:index:Thing" if custom else "test:index:Component",
        name=name,
        parent=parent,
        custom=custom,
        inputs={},
        options=ResourceOptionsRecord(dependencies=tuple(f"urn:{d}" for d in deps)),
    )


def _run(*resources: RecordedResource) -> ProgramRun:
    return ProgramRun("p", "s", {}, list(resources), {}, [], [])


def test_order_follows_dependencies_transitively_through_components_and_custom_parents():
    # GIVEN x depends on a component whose child waits for e, and e is a custom child of f
    run = _run(
        _resource("f"),
        _resource("e", parent="urn:f"),
        _resource("component", custom=False),
        _resource("child", parent="urn:component", deps=["e"]),
        _resource("x", deps=["component"]),
        _resource("unrelated"),
    )
    x = next(r for r in run.resources if r.name == "x")

    # THEN x waits for the component's child, what the child waits for, and e's parent
    assert run.created_after(x) == {"urn:component", "urn:child", "urn:e", "urn:f"}
    assert not run.is_created_after(x, next(r for r in run.resources if r.name == "unrelated"))


def test_each_nat_gateway_is_created_after_the_internet_gateway(each_stack_run):
    gateway = each_stack_run.one(IGW)
    for nat in each_stack_run.of_type(NAT):
        assert each_stack_run.is_created_after(nat, gateway), nat.name


def test_the_group_launches_from_a_template_that_exists(each_stack_run):
    assert each_stack_run.is_created_after(
        each_stack_run.one(ASG), each_stack_run.one(LAUNCH_TEMPLATE)
    )


def test_requests_per_target_scaling_waits_for_the_forwarding_listener(each_stack_run):
    # AWS refuses ALBRequestCountPerTarget until the target group is behind a listener.
    policy = next(p for p in each_stack_run.of_type(POLICY) if p.name.endswith("-requests-target"))
    forwarding = [
        listener
        for listener in each_stack_run.of_type(LISTENER)
        if listener.inputs["defaultActions"][0]["type"] == "forward"
    ]
    assert forwarding
    assert all(each_stack_run.is_created_after(policy, listener) for listener in forwarding)


def test_nothing_orders_the_cache_after_the_load_balancer(each_stack_run):
    # The two are independent: `pulumi up` builds them side by side.
    assert not each_stack_run.is_created_after(each_stack_run.one(CACHE), each_stack_run.one(ALB))


EIP = "aws:ec2/eip:Eip"
ROUTE = "aws:ec2/route:Route"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"


def test_every_internet_facing_resource_waits_for_the_gateway_and_the_public_routes(
    each_stack_run,
):
    # GIVEN the internet gateway, the public default route and the public subnets' routes
    run = each_stack_run
    gateway = run.one(IGW)
    routes = [r for r in run.of_type(ROUTE) if r.inputs.get("gatewayId") == gateway.id]
    public = [a for a in run.of_type(ASSOCIATION) if "-public-" in a.name]
    assert routes
    assert public

    # THEN the ALB, every NAT gateway and every NAT address are created only after all of
    # them: AWS refuses an internet-facing ALB in a VPC without an attached gateway
    for resource in [run.one(ALB), *run.of_type(NAT), *run.of_type(EIP)]:
        missing = [
            p.name for p in (gateway, *routes, *public) if not run.is_created_after(resource, p)
        ]
        assert not missing, f"{resource.name} may be created before {missing}"


SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
USER_GROUP = "aws:elasticache/userGroup:UserGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def test_instances_launch_only_once_the_cache_accepts_their_credentials(each_stack_run):
    run = each_stack_run
    template = run.one(LAUNCH_TEMPLATE)
    if run.config.get("pyscale:cacheAuth") == "iam":
        # IAM tokens name the user and the group: both exist, the group attached first.
        prerequisites = [run.one(CACHE), run.one(USER_GROUP)]
    else:
        # The user data names only the secret's ARN, which exists before its value.
        prerequisites = run.of_type(SECRET_VERSION)
        assert prerequisites
    # ...and the role's policies (the release, the secret or elasticache:Connect) are in.
    prerequisites += [p for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == template_role(run)]
    missing = [p.name for p in prerequisites if not run.is_created_after(template, p)]
    assert not missing, f"instances may launch before {missing}"


def template_role(run) -> str:
    role = next(r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("-instance-role"))
    return role.id
