"""Environment validation: a bad value stops the app at start, naming the variable."""

from __future__ import annotations

import pytest

from app.contract import DEFAULT_PORT, Env
from app.settings import AppEnvironment, SettingsError, load_settings

ARN = "arn:aws:secretsmanager:us-east-2:123456789012:secret:pyscale/auth-x1Y2z3"
IAM = {
    "REDIS_URL": "rediss://clustercfg.pyscale-prod-redis.example:6379",
    "REDIS_IAM_USER": "pyscale-prod-app",
    "REDIS_IAM_REPLICATION_GROUP": "pyscale-prod-redis-0a1b2c3",
    "AWS_REGION": "us-east-1",
}


def test_defaults_need_no_environment_at_all():
    settings = load_settings({})
    assert settings.server.port == DEFAULT_PORT
    assert settings.server.web_concurrency is None
    assert settings.redis is None
    assert settings.cache.ttl_seconds == 300
    assert settings.app_version == "dev"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
        ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY"),
        ({"WEB_THREADS": "-1"}, "WEB_THREADS"),
        ({"CACHE_TTL_SECONDS": "0"}, "CACHE_TTL_SECONDS"),
        ({"CACHE_TTL_SECONDS": "5m"}, "CACHE_TTL_SECONDS"),
        ({"CACHE_TTL_JITTER": "nan"}, "CACHE_TTL_JITTER"),
        ({"CACHE_TTL_JITTER": "2"}, "CACHE_TTL_JITTER"),
        ({"NEAR_CACHE_MAX_BYTES": "-1"}, "NEAR_CACHE_MAX_BYTES"),
        ({"CIRCUIT_BREAKER_FAILURES": "0"}, "CIRCUIT_BREAKER_FAILURES"),
        ({"REDIS_TIMEOUT_SECONDS": "30"}, "REDIS_TIMEOUT_SECONDS"),
        ({"REDIS_URL": "http://cache:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "cache:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://cache:99999"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://cache:6379/zero"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://cache:6379/0?socket_timeout=30"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://cache", "REDIS_CLUSTER": "maybe"}, "REDIS_CLUSTER"),
        ({"REDIS_CLUSTER": "true"}, "REDIS_CLUSTER"),
        ({"REDIS_URL": "redis://c", "REDIS_AUTH_SECRET_ARN": "my-secret"}, "REDIS_AUTH_SECRET_ARN"),
        ({"REDIS_AUTH_SECRET_ARN": ARN}, "REDIS_AUTH_SECRET_ARN"),
        ({"REDIS_URL": "redis://c", "REDIS_TLS_CA_FILE": "/etc/hosts"}, "REDIS_TLS_CA_FILE"),
        ({"REDIS_URL": "rediss://c", "REDIS_TLS_CA_FILE": "/nonexistent"}, "REDIS_TLS_CA_FILE"),
        ({"REDIS_URL": "rediss://c", "REDIS_TLS_CA_FILE": "/etc/hosts"}, "REDIS_TLS_CA_FILE"),
        ({"APP_VERSION": "1.0 beta"}, "APP_VERSION"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.0/33"}, "FORWARDED_ALLOW_IPS"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1/16"}, "FORWARDED_ALLOW_IPS"),
        ({"FORWARDED_ALLOW_IPS": "127.0.0.1, my-load-balancer"}, "FORWARDED_ALLOW_IPS"),
        ({"TRUSTED_HOSTS": "https://app.example.com"}, "TRUSTED_HOSTS"),
        ({"TRUSTED_HOSTS": "app.example.com:443"}, "TRUSTED_HOSTS"),
        ({"TRUSTED_HOSTS": "app.example.com/shop"}, "TRUSTED_HOSTS"),
        ({"TRUSTED_HOSTS": "*.example.com"}, "TRUSTED_HOSTS"),
        (
            {"REDIS_URL": "rediss://c", "REDIS_AUTH_SECRET_ARN": ARN, "AWS_REGION": "Ireland"},
            "AWS_REGION",
        ),
        ({**IAM, "REDIS_IAM_USER": "9-app"}, "REDIS_IAM_USER"),
        ({**IAM, "REDIS_IAM_USER": "app_user"}, "REDIS_IAM_USER"),
        ({**IAM, "REDIS_URL": "redis://c"}, "REDIS_IAM_USER"),
        ({**IAM, "REDIS_URL": "rediss://:pw@c"}, "REDIS_IAM_USER"),
        ({**IAM, "REDIS_AUTH_SECRET_ARN": ARN}, "REDIS_IAM_USER"),
        ({k: v for k, v in IAM.items() if k != "REDIS_URL"}, "REDIS_IAM_USER"),
        ({**IAM, "REDIS_IAM_REPLICATION_GROUP": "cache--1"}, "REDIS_IAM_REPLICATION_GROUP"),
        ({**IAM, "REDIS_IAM_REPLICATION_GROUP": "cache-"}, "REDIS_IAM_REPLICATION_GROUP"),
        ({**IAM, "REDIS_IAM_REPLICATION_GROUP": "c" * 41}, "REDIS_IAM_REPLICATION_GROUP"),
        ({**IAM, "REDIS_IAM_REPLICATION_GROUP": ""}, "REDIS_IAM_USER"),
        ({**IAM, "REDIS_IAM_USER": ""}, "REDIS_IAM_REPLICATION_GROUP"),
        ({**IAM, "AWS_REGION": ""}, "AWS_REGION"),
        ({**IAM, "AWS_REGION": "Virginia"}, "AWS_REGION"),
    ],
)
def test_an_invalid_value_is_rejected_naming_the_variable(env, named):
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    assert any(problem.startswith(named) for problem in raised.value.problems), raised.value


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as raised:
        load_settings({"PORT": "x", "CACHE_TTL_SECONDS": "-1", "APP_VERSION": "a b"})
    assert len(raised.value.problems) == 3


def test_a_password_in_the_url_and_a_secret_arn_are_exclusive():
    with pytest.raises(SettingsError, match="REDIS_AUTH_SECRET_ARN and a password"):
        load_settings({"REDIS_URL": "rediss://:pw@cache:6379", "REDIS_AUTH_SECRET_ARN": ARN})


def test_the_password_never_appears_in_an_error_message():
    with pytest.raises(SettingsError) as raised:
        load_settings({"REDIS_URL": "http://:hunter2@cache:6379"})
    assert "hunter2" not in str(raised.value)


def test_cluster_mode_has_only_database_zero():
    with pytest.raises(SettingsError, match="REDIS_URL: cluster mode"):
        load_settings({"REDIS_URL": "redis://cfg:6379/3", "REDIS_CLUSTER": "true"})


def test_tls_auth_and_secret_region_are_derived():
    settings = load_settings(
        {"REDIS_URL": "rediss://master.cache.example:6379", "REDIS_AUTH_SECRET_ARN": ARN}
    )
    assert settings.redis.tls
    assert settings.redis.auth_secret_arn == ARN
    assert settings.aws_region == "us-east-2"


@pytest.mark.parametrize(("text", "value"), [("true", True), ("1", True), ("no", False)])
def test_redis_cluster_accepts_the_usual_spellings_of_a_boolean(text, value):
    settings = load_settings({"REDIS_URL": "redis://cfg:6379", "REDIS_CLUSTER": text})
    assert settings.redis.cluster is value


@pytest.mark.parametrize("value", ["*", "10.0.0.0/16", "10.0.0.0/16, 10.1.0.0/16,", "::1"])
def test_forwarded_allow_ips_takes_what_gunicorn_takes(value):
    assert load_settings({"FORWARDED_ALLOW_IPS": value}).server.forwarded_allow_ips == value


def test_trusted_hosts_are_names_and_a_leading_dot_admits_subdomains():
    settings = load_settings({"TRUSTED_HOSTS": "App.Example.com, .example.org,127.0.0.1,"})

    assert settings.trusted_hosts == ("app.example.com", ".example.org", "127.0.0.1")
    assert load_settings({}).trusted_hosts == ()


def test_aws_region_is_only_checked_where_secrets_manager_uses_it():
    assert load_settings({"AWS_REGION": "local"}).aws_region == "local"
    with_secret = {"REDIS_URL": "rediss://c", "REDIS_AUTH_SECRET_ARN": ARN}
    assert (
        load_settings({**with_secret, "AWS_REGION": "us-gov-west-1"}).aws_region == "us-gov-west-1"
    )


def test_a_redis_url_query_is_refused_at_start_rather_than_failing_every_request(app_factory):
    # redis-py would pass `?foo=bar` to its connection class, which raises on each request.
    with pytest.raises(SettingsError, match="REDIS_URL: query parameters") as raised:
        app_factory("redis://127.0.0.1:6379/0?foo=bar&password=hunter2")
    assert "hunter2" not in str(raised.value)


def test_iam_authentication_names_the_user_group_and_region_the_tokens_are_signed_for():
    redis = load_settings(IAM).redis

    assert redis is not None
    assert redis.iam is not None
    assert (redis.iam.user_id, redis.iam.replication_group_id, redis.iam.region) == (
        "pyscale-prod-app", "pyscale-prod-redis-0a1b2c3", "us-east-1",
    )  # fmt: skip
    assert redis.auth_secret_arn is None
    assert load_settings({"REDIS_URL": "rediss://c"}).redis.iam is None


def test_every_contract_variable_is_declared_exactly_once():
    declared = [field.validation_alias for field in AppEnvironment.model_fields.values()]
    contract = [value for name, value in vars(Env).items() if not name.startswith("_")]
    assert len(declared) == len(set(declared))
    assert sorted(declared) == sorted(contract)


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch):
    monkeypatch.setenv("WEB_THREADS", "7")
    assert load_settings().server.web_threads == 7


def test_a_dotenv_file_is_never_read(tmp_path, monkeypatch):
    # Configuration comes only from the environment, whatever lies in the working directory.
    (tmp_path / ".env").write_text("WEB_THREADS=9\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WEB_THREADS", raising=False)
    assert load_settings().server.web_threads == 4


def test_a_blank_value_counts_as_unset_and_surrounding_spaces_are_ignored():
    settings = load_settings({"PORT": "  ", "WEB_CONCURRENCY": " 3 ", "LOG_LEVEL": "debug"})
    assert settings.server.port == DEFAULT_PORT
    assert settings.server.web_concurrency == 3
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("text", ["1.0", "0x10", "1e3", "true"])
def test_an_integer_is_written_as_one(text):
    with pytest.raises(SettingsError, match=r"WEB_THREADS='.*': must be an integer from 1 to 64"):
        load_settings({"WEB_THREADS": text})


def test_a_variable_with_several_problems_gets_one_line_naming_them_all():
    with pytest.raises(SettingsError) as raised:
        load_settings({"REDIS_URL": "redis://cache:0/zero"})
    assert raised.value.problems == [
        "REDIS_URL: port must be 1-65535; the path must be a database number, got 'zero'"
    ]
