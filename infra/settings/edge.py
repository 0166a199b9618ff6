"""Edge keys: the load balancer, its TLS and the optional WAF in front of the fleet."""

from __future__ import annotations

import enum
import ipaddress
import re
from typing import Annotated, Self

from pydantic import BeforeValidator, ValidationInfo, field_validator, model_validator

from infra.settings.base import (
    AreaSettings,
    Problems,
    did_you_mean,
    empty_is_none,
    in_place,
    lower,
    matches,
    replacement,
    setting,
)


class TlsMode(enum.StrEnum):
    """How the ALB serves HTTPS: not at all, with a given ACM certificate, or with one the
    program requests and DNS-validates for ``domainName`` in ``hostedZoneId``."""

    NONE = "none"
    CERTIFICATE = "certificate"
    DOMAIN = "domain"


class WafRule(enum.StrEnum):
    """The web ACL's rules, by the names they have in it (and in wafCountRules)."""

    IP_REPUTATION = "aws-ip-reputation"
    RATE_LIMIT = "rate-limit-per-ip"
    KNOWN_BAD_INPUTS = "aws-known-bad-inputs"
    COMMON = "aws-common-rule-set"


# The rules of AWSManagedRulesCommonRuleSet (AWS WAF developer guide, "Baseline rule
# groups", core rule set table; read 2026-12-01). Two matter to every app: SizeRestrictions_
# BODY blocks request bodies over 8 KB and NoUserAgent_HEADER blocks requests without a
# User-Agent header (scripts, some health checkers).
COMMON_RULE_SET_RULES = (
    "NoUserAgent_HEADER",
    "UserAgent_BadBots_HEADER",
    "SizeRestrictions_QUERYSTRING",
    "SizeRestrictions_Cookie_HEADER",
    "SizeRestrictions_BODY",
    "SizeRestrictions_URIPATH",
    "EC2MetaDataSSRF_BODY",
    "EC2MetaDataSSRF_COOKIE",
    "EC2MetaDataSSRF_URIPATH",
    "EC2MetaDataSSRF_QUERYARGUMENTS",
    "GenericLFI_QUERYARGUMENTS",
    "GenericLFI_URIPATH",
    "GenericLFI_BODY",
    "RestrictedExtensions_URIPATH",
    "RestrictedExtensions_QUERYARGUMENTS",
    "GenericRFI_QUERYARGUMENTS",
    "GenericRFI_BODY",
    "GenericRFI_URIPATH",
    "CrossSiteScripting_COOKIE",
    "CrossSiteScripting_QUERYARGUMENTS",
    "CrossSiteScripting_BODY",
    "CrossSiteScripting_URIPATH",
)
TLS13_POLICY_PREFIX = "ELBSecurityPolicy-TLS13-"
DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# Values the shipped stacks use as placeholders (RFC 2606 domains, AWS docs' account id).
EXAMPLE_MARKERS = ("example.com", "example.org", "example.net", "EXAMPLE", "123456789012")
_CERTIFICATE_ARN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]+$"
)
_DOMAIN = r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
# Turning HTTPS on or off swaps the port-80 listener (forward <-> redirect): Pulumi creates
# the new one before deleting the old, and an ALB has one listener per port.
_TLS_ON_OFF = (
    "turning HTTPS on or off replaces the port-80 listener, created before the old one "
    "is deleted: expect AWS to refuse the duplicate port; remove the old listener first"
)


class EdgeSettings(AreaSettings):
    allowed_cidrs: tuple[str, ...] = setting(
        "allowedCidrs",
        ("0.0.0.0/0",),
        allowed="IPv4 CIDRs, at least one",
        doc="IPv4 ranges the ALB listeners admit.",
        change=in_place("security group rules are added or removed"),
    )
    require_https: bool = setting(
        "requireHttps",
        False,
        doc="Refuse to deploy without a certificate (certificateArn or domainName).",
        change=in_place("a check only: nothing is created"),
    )
    certificate_arn: Annotated[str | None, BeforeValidator(empty_is_none)] = setting(
        "certificateArn",
        "",
        allowed="ACM certificate ARN in the stack's region, or empty",
        doc="ACM certificate of the HTTPS listener (HTTP then redirects to HTTPS).",
        change=in_place("the HTTPS listener switches certificate; " + _TLS_ON_OFF),
    )
    domain_name: Annotated[
        str | None,
        BeforeValidator(lower),
        BeforeValidator(empty_is_none),
        matches(_DOMAIN, "must be a DNS name like app.example.com"),
    ] = setting(
        "domainName",
        "",
        allowed="DNS name, or empty",
        doc="Domain pointed at the ALB; without certificateArn an ACM certificate is "
        "requested and DNS-validated for it.",
        change=replacement(
            "a new ACM certificate is requested and validated before the listener lets go "
            "of the old one; the alias record moves to the new name; " + _TLS_ON_OFF
        ),
    )
    hosted_zone_id: Annotated[
        str | None,
        BeforeValidator(empty_is_none),
        matches(r"^Z[A-Z0-9]{1,31}$", "must be a Route 53 zone id like Z0123ABC"),
    ] = setting(
        "hostedZoneId",
        "",
        allowed="Route 53 zone id, or empty",
        doc="Route 53 hosted zone of domainName (set both or neither).",
        change=replacement("the alias and validation records are recreated in the new zone"),
    )
    ssl_policy: str = setting(
        "sslPolicy",
        DEFAULT_SSL_POLICY,
        allowed=f"{TLS13_POLICY_PREFIX}*",
        doc="TLS policy of the HTTPS listener (a TLS 1.3 policy).",
        change=in_place(),
    )
    deletion_protection: bool = setting(
        "albDeletionProtection",
        False,
        doc="Protect the ALB from deletion (lift it before `pulumi destroy`).",
        change=in_place(),
    )
    access_logs: bool = setting(
        "albAccessLogs",
        False,
        doc="ALB access logs to an encrypted private bucket, kept logRetentionDays.",
        change=in_place(
            "on creates the bucket; off deletes it, which S3 refuses while it holds logs"
        ),
    )
    waf: bool = setting(
        "waf",
        False,
        doc="WAF web ACL on the ALB: AWS's IP reputation list, known-bad-inputs and common "
        "rule sets, a rate limit per client IP, and logs to an aws-waf-logs- log group.",
        change=in_place("the web ACL is created or deleted and (dis)associated"),
    )
    waf_rate_limit: int = setting(
        "wafRateLimit",
        2000,
        # AWS WAF developer guide, "Rate-based rule high-level settings" (read
        # 2026-11-25): the lowest limit allowed is 10; the upper bound is the API's.
        ge=10,
        le=2_000_000_000,
        unit=" requests per 5 minutes",
        doc="Requests per client IP per 5 minutes before WAF blocks it.",
        change=in_place(),
    )

    # Strings checked against WafRule (a tuple of an enum would not be a config "array").
    waf_count_rules: tuple[str, ...] = setting(
        "wafCountRules",
        (),
        allowed=", ".join(rule.value for rule in WafRule),
        doc="WAF rules that only count matching requests instead of blocking them (to try a "
        "rule on live traffic first); the others block.",
        change=in_place("the web ACL is updated in place"),
    )
    waf_common_rule_overrides: tuple[str, ...] = setting(
        "wafCommonRuleOverrides",
        (),
        allowed="rule names of AWSManagedRulesCommonRuleSet, e.g. SizeRestrictions_BODY",
        doc="Rules of the AWS common rule set that count instead of block, e.g. "
        "SizeRestrictions_BODY (bodies over 8 KB) or NoUserAgent_HEADER (no User-Agent).",
        change=in_place("the web ACL is updated in place"),
    )
    host_names: tuple[str, ...] = setting(
        "hostNames",
        (),
        allowed="DNS names",
        doc="Host names the ALB serves besides domainName and its own DNS name (e.g. your "
        "CNAME to it); requests for any other Host get 404 at the ALB.",
        change=in_place("listener rules and the app's trusted hosts are updated"),
    )

    @field_validator("waf_count_rules")
    @classmethod
    def _waf_rule_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        known = [rule.value for rule in WafRule]
        for name in names:
            if name not in known:
                raise ValueError(
                    f"{name!r} is not a rule of the web ACL{did_you_mean(name, known)}; its "
                    f"rules are {', '.join(known)}"
                )
        return names

    @property
    def counted_waf_rules(self) -> frozenset[WafRule]:
        return frozenset(WafRule(name) for name in self.waf_count_rules)

    @field_validator("waf_common_rule_overrides")
    @classmethod
    def _common_rule_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in COMMON_RULE_SET_RULES]
        if unknown:
            hint = did_you_mean(unknown[0], COMMON_RULE_SET_RULES)
            raise ValueError(
                f"{unknown[0]!r} is not a rule of AWSManagedRulesCommonRuleSet{hint}; its "
                f"rules are {', '.join(COMMON_RULE_SET_RULES)}"
            )
        return names

    @field_validator("host_names", mode="before")
    @classmethod
    def _host_names(cls, names: object) -> object:
        if not isinstance(names, list | tuple):
            return names
        for name in names:
            if not isinstance(name, str) or not re.match(_DOMAIN, name.strip().lower()):
                raise ValueError(f"must hold DNS names like www.example.com, got {name!r}")
        return tuple(name.strip().lower() for name in names)

    @field_validator("allowed_cidrs")
    @classmethod
    def _ipv4_networks(cls, cidrs: tuple[str, ...]) -> tuple[str, ...]:
        if not cidrs:
            raise ValueError('must list at least one IPv4 CIDR, e.g. ["0.0.0.0/0"]')
        for cidr in cidrs:
            try:
                ipaddress.IPv4Network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IPv4 network (e.g. 203.0.113.0/24)") from None
        return cidrs

    @field_validator("ssl_policy")
    @classmethod
    def _tls13(cls, policy: str) -> str:
        if not policy.startswith(TLS13_POLICY_PREFIX):
            raise ValueError(
                f"must be a TLS 1.3 policy ({TLS13_POLICY_PREFIX}*, e.g. {DEFAULT_SSL_POLICY}), "
                f"got {policy!r}"
            )
        return policy

    @model_validator(mode="after")
    def _tls(self, info: ValidationInfo) -> Self:
        problems = Problems()
        region = (info.context or {}).get("region")
        if self.certificate_arn is not None:
            arn = _CERTIFICATE_ARN.match(self.certificate_arn)
            if arn is None:
                problems.add(
                    "certificateArn",
                    "must be an ACM certificate ARN "
                    "(arn:aws:acm:<region>:<account>:certificate/<id>), "
                    f"got {self.certificate_arn!r}",
                )
            elif region and arn["region"] != region:
                problems.add(
                    "certificateArn",
                    f"must be in the stack's region {region} (an ALB uses certificates from "
                    f"its own region), got {arn['region']}",
                )
        if (self.domain_name is None) != (self.hosted_zone_id is None):
            missing = "hostedZoneId" if self.hosted_zone_id is None else "domainName"
            problems.add(missing, "domainName and hostedZoneId must be set together")
        if self.require_https and self.tls is TlsMode.NONE:
            problems.add(
                "requireHttps",
                "is true but no certificate is configured: set pyscale:certificateArn to an "
                "ACM certificate in this region, or pyscale:domainName and "
                "pyscale:hostedZoneId so the program requests and DNS-validates one",
            )
        problems.check()
        return self

    @property
    def tls(self) -> TlsMode:
        if self.certificate_arn is not None:
            return TlsMode.CERTIFICATE
        if self.domain_name is not None:
            return TlsMode.DOMAIN
        return TlsMode.NONE

    @property
    def https(self) -> bool:
        return self.tls is not TlsMode.NONE

    @property
    def listener_ports(self) -> tuple[int, ...]:
        return (80, 443) if self.https else (80,)

    @property
    def alias_record(self) -> bool:
        """Point domainName at the ALB (with either TLS mode, or none)."""
        return self.domain_name is not None and self.hosted_zone_id is not None

    @property
    def example_tls_values(self) -> dict[str, str]:
        """The TLS keys still holding the shipped placeholders, with their values."""
        values = {
            "certificateArn": self.certificate_arn,
            "domainName": self.domain_name,
            "hostedZoneId": self.hosted_zone_id,
        }
        return {
            key: value
            for key, value in values.items()
            if value and any(marker in value for marker in EXAMPLE_MARKERS)
        }

    @property
    def uses_example_tls(self) -> bool:
        """True while the TLS values are the shipped placeholders: a preview warns, a
        deploy is refused (infra.settings.load_from_pulumi)."""
        return bool(self.example_tls_values)
