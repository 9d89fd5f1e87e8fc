"""Protects the tenant namespace renderer: quota, limits, network policy, service account and settings
follow the registry and the cluster profile; bad profiles and bad CLI input fail with a clear message."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from spotify_jobs.cli.deploy import render_base, render_tenant
from spotify_jobs.k8s.config import SETTINGS_CONFIG_MAP, SETTINGS_SECRET
from spotify_jobs.k8s.naming import (
    RUN_LAUNCHER_CONFIG,
    STEP_SERVICE_ACCOUNT,
    tenant_namespace,
    tenant_queue_name,
)
from spotify_jobs.k8s.tenant_objects import (
    NON_PUBLIC_RANGES,
    ClusterProfile,
    ProfileError,
    kueue_objects,
    largest_tier_within,
    tenant_files,
    tenant_objects,
    write_files,
)
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.registry import Tenant, TenantQuota
from spotify_jobs_tests.deploy.tree import PRODUCTION_PROFILE

PROFILE_FIELDS = {
    "environment": "staging",
    "platform_namespace": "spotify-ai-agent-stg",
    "image": "registry.example.com/spotify-jobs:1.2.3",
    "data_root": "s3://data-bucket/platform",
    "backup_root": "s3://backup-bucket/platform",
}


def by_kind(objects: list[dict]) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for obj in objects:
        kinds.setdefault(obj["kind"], []).append(obj)
    return kinds


@pytest.fixture
def profile() -> ClusterProfile:
    return ClusterProfile.model_validate(PROFILE_FIELDS)


@pytest.mark.parametrize("tenant_id", ["enterprise-001", "premium-client-001", "startup-042"])
def test_namespace_objects_follow_the_registry(registry, profile, tenant_id):
    tenant = registry.get(tenant_id)
    kinds = by_kind(tenant_objects(tenant, profile))
    namespace = tenant_namespace("staging", tenant_id)
    assert namespace == f"sj-stg-{tenant_id}"
    assert all(
        o["metadata"].get("namespace", o["metadata"]["name"]) == namespace
        for objs in kinds.values()
        for o in objs
    )
    (quota,) = kinds["ResourceQuota"]
    assert quota["spec"]["hard"] == {
        "requests.cpu": tenant.quota.cpu,
        "limits.cpu": tenant.quota.cpu,
        "requests.memory": tenant.quota.memory,
        "limits.memory": tenant.quota.memory,
        "requests.nvidia.com/gpu": str(tenant.quota.gpu),
        "pods": str(tenant.quota.pods),
        "count/jobs.batch": str(tenant.quota.jobs),
    }
    (limits,) = kinds["LimitRange"][0]["spec"]["limits"]
    tier = {"enterprise-001": ("16000m", "32Gi"), "premium-client-001": ("8000m", "16Gi")}.get(
        tenant_id, ("250m", "512Mi")
    )
    assert limits["default"] == limits["defaultRequest"] == {"cpu": tier[0], "memory": tier[1]}
    (account,) = kinds["ServiceAccount"]
    assert account["metadata"]["name"] == STEP_SERVICE_ACCOUNT
    assert account["automountServiceAccountToken"] is False
    assert "annotations" not in account["metadata"]  # no IAM role in this profile
    (config_map,) = kinds["ConfigMap"]
    assert config_map["metadata"]["name"] == SETTINGS_CONFIG_MAP
    assert {s["metadata"]["name"] for s in kinds["Secret"]} == {
        SETTINGS_SECRET,
        RUN_LAUNCHER_CONFIG["postgres_password_secret"],
    }


def test_limit_range_max_is_the_largest_tier_the_quota_holds(registry):
    assert largest_tier_within(registry.get("startup-042")).name == "large"  # 2 cpu / 4Gi
    assert largest_tier_within(registry.get("premium-client-001")).name == "enterprise"  # 34 cpu / 68Gi
    assert largest_tier_within(registry.get("enterprise-001")).name == "enterprise"
    tiny = Tenant(id="tiny", display_name="Tiny", tier="micro", quota=TenantQuota(cpu="50m", memory="64Mi"))
    with pytest.raises(ValueError, match="fits no tier"):
        largest_tier_within(tiny)


def test_network_policy_denies_all_but_the_egress_steps_need(registry, profile):
    kinds = by_kind(tenant_objects(registry.get("startup-042"), profile))
    deny, allow = kinds["NetworkPolicy"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert allow["spec"]["policyTypes"] == ["Egress"] and "ingress" not in allow["spec"]
    rules = {rule["ports"][-1]["port"]: rule for rule in allow["spec"]["egress"]}
    assert set(rules) == {53, 443, 5432, 9091}
    assert {p["protocol"] for p in rules[53]["ports"]} == {"UDP", "TCP"}
    (public,) = rules[443]["to"]
    assert public["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert "169.254.0.0/16" in public["ipBlock"]["except"]  # the node metadata endpoint
    assert set(public["ipBlock"]["except"]) == set(NON_PUBLIC_RANGES)
    # No database CIDR in this profile: the instance DB is reached in the platform namespace.
    assert rules[5432]["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "spotify-ai-agent-stg"}}}
    ]
    pushgateway = rules[9091]["to"][0]
    assert pushgateway["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert pushgateway["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus-pushgateway"}


def test_database_cidrs_and_iam_role_come_from_the_profile(registry):
    profile = ClusterProfile.model_validate(
        {
            **PROFILE_FIELDS,
            "database_cidrs": ["10.1.0.0/16"],
            "iam_role_arn": "arn:aws:iam::1:role/{environment}-{tenant}",
        }
    )
    kinds = by_kind(tenant_objects(registry.get("startup-042"), profile))
    egress = kinds["NetworkPolicy"][1]["spec"]["egress"]
    assert {
        "to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": 5432}],
    } in egress
    annotations = kinds["ServiceAccount"][0]["metadata"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/staging-startup-042"}


def test_settings_config_map_is_what_a_step_pod_loads(registry, profile, monkeypatch):
    tenant = registry.get("premium-client-001")
    (config_map,) = by_kind(tenant_objects(tenant, profile))["ConfigMap"]
    for name, value in config_map["data"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SPOTIFY_JOBS_PSEUDONYM_SECRET", "from-the-secret")
    settings = load_settings()
    assert settings.tenant_id == tenant.id
    assert settings.environment == "staging"
    assert settings.namespace == "spotify-ai-agent-stg"
    assert settings.executor == "k8s"
    assert settings.image == profile.image
    assert settings.data_root == profile.data_root
    assert settings.resource_tier == tenant.tier
    assert settings.priority == tenant.priority
    assert settings.service_account == STEP_SERVICE_ACCOUNT
    assert settings.pushgateway_url == "http://pushgateway.spotify-ai-agent-stg.svc.cluster.local:9091"


def test_kueue_queues_carry_the_tenant_quota(registry, profile):
    tenant = registry.get("enterprise-001")
    cluster_queue, local_queue = kueue_objects(tenant, profile)
    assert local_queue["metadata"] == {**local_queue["metadata"], "name": tenant_queue_name(tenant.id)}
    assert local_queue["metadata"]["namespace"] == tenant_namespace("staging", tenant.id)
    assert local_queue["spec"]["clusterQueue"] == cluster_queue["metadata"]["name"]
    (group,) = cluster_queue["spec"]["resourceGroups"]
    quotas = {r["name"]: r["nominalQuota"] for r in group["flavors"][0]["resources"]}
    assert quotas == {"cpu": "100", "memory": "200Gi", "nvidia.com/gpu": "2"}
    assert set(group["coveredResources"]) == set(quotas)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"data_root": "data"}, "data_root='data': step pods share no disk"),
        ({"backup_root": "s3://"}, "backup_root='s3://'"),
        ({"iam_role_arn": "arn:aws:iam::1:role/shared"}, "include '{tenant}'"),
        ({"database_cidrs": ["10.0.0.0/33"]}, "not a CIDR"),
        ({"platform_namespace": "Platform_NS"}, "DNS-1123 label"),
        ({"environment": "qa"}, "environment='qa'"),
        ({"colour": "blue"}, "colour='blue'"),
    ],
)
def test_bad_profiles_are_refused_by_name(tmp_path, override, message):
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**PROFILE_FIELDS, **override}))
    with pytest.raises(ProfileError, match="invalid cluster profile") as raised:
        ClusterProfile.load(load_settings(), path)
    assert message in str(raised.value)


def test_unreadable_or_malformed_profile_files(tmp_path):
    with pytest.raises(ProfileError, match="cannot read cluster profile"):
        ClusterProfile.load(load_settings(), tmp_path / "missing.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(ProfileError, match="must be a mapping"):
        ClusterProfile.load(load_settings(), path)


def test_local_settings_are_not_a_cluster_profile():
    with pytest.raises(ProfileError, match="data_root='data'"):
        ClusterProfile.load(load_settings(data_root="data", backup_root="data/backups"))


def test_write_files_replaces_stale_generated_files(registry, profile, tmp_path):
    stale = tmp_path / "core" / "networkpolicy-old.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("# Generated by `spotify-jobs render-tenant` ...\nkind: NetworkPolicy\n")
    handwritten = tmp_path / "notes.yaml"
    handwritten.write_text("kept: true\n")
    files = tenant_files(registry.get("startup-042"), profile)
    written = write_files(files, tmp_path)
    assert not stale.exists() and handwritten.exists()
    assert sorted(str(p.relative_to(tmp_path)) for p in written) == sorted(files)


def test_cli_renders_one_tenant_and_all_tenants(tmp_path, registry):
    runner = CliRunner()
    result = runner.invoke(
        render_tenant,
        ["--tenant", "startup-042", "--profile", str(PRODUCTION_PROFILE), "--out", str(tmp_path / "one")],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["tenants"] == ["startup-042"] and report["environment"] == "production"
    assert (tmp_path / "one" / "startup-042" / "kustomization.yaml").exists()
    assert report["files"] == len(list((tmp_path / "one" / "startup-042").rglob("*.yaml")))

    role = "arn:aws:iam::42:role/t-{tenant}"
    result = runner.invoke(
        render_tenant,
        [
            "--all",
            "--profile",
            str(PRODUCTION_PROFILE),
            "--iam-role-arn",
            role,
            "--out",
            str(tmp_path / "all"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(registry.ids)
    account = yaml.safe_load(
        (tmp_path / "all" / "enterprise-001" / "core" / "serviceaccount-spotify-jobs-step.yaml").read_text()
    )
    assert (
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        == "arn:aws:iam::42:role/t-enterprise-001"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "x"], "exactly one of --tenant T or --all"),
        (["--tenant", "startup-042", "--all", "--out", "x"], "exactly one of --tenant T or --all"),
        (["--tenant", "nobody-999", "--out", "x"], "unknown tenant 'nobody-999'"),
        (["--tenant", "Bad_Tenant", "--out", "x"], "not a DNS-1123 label"),
        (
            ["--tenant", "startup-042", "--iam-role-arn", "arn:role/shared", "--out", "x"],
            "include '{tenant}'",
        ),
    ],
)
def test_cli_refuses_bad_input_with_a_clear_error(tmp_path, args, message):
    args = [*args, "--profile", str(PRODUCTION_PROFILE)]
    result = CliRunner().invoke(render_tenant, args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_renders_the_base(tmp_path):
    result = CliRunner().invoke(render_base, ["--profile", str(PRODUCTION_PROFILE), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files"] == len(list(tmp_path.rglob("*.yaml")))
    assert (tmp_path / "kueue" / "kustomization.yaml").exists()
