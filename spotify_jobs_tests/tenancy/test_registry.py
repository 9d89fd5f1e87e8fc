"""Protects the tenant model: ids safe for namespaces and paths, the seed's tiers and priorities, a valid registry."""

from __future__ import annotations

import pytest
import yaml

from spotify_jobs.tenancy.partitions import tenant_date_key, tenant_of, time_of
from spotify_jobs.tenancy.quantities import cpu_millicores, memory_mib
from spotify_jobs.tenancy.registry import (
    InvalidTenantId,
    TenantRegistryError,
    UnknownTenant,
    load_registry,
    validate_tenant_id,
)
from spotify_jobs.tenancy.tiers import TIERS, JobType, Priority, job_type_of, priority_of, tier_spec

HOSTILE_IDS = [
    "",
    "../x",
    "a/b",
    "A_B",
    "Enterprise-001",
    "-leading",
    "trailing-",
    "tenant.with.dots",
    "ténant",
    "x" * 41,
    "a b",
    "a\nb",
    "..",
    None,
    42,
]


@pytest.mark.parametrize("tenant_id", HOSTILE_IDS)
def test_hostile_tenant_ids_are_rejected(tenant_id):
    with pytest.raises(InvalidTenantId):
        validate_tenant_id(tenant_id)


@pytest.mark.parametrize("tenant_id", ["a", "enterprise-001", "startup-042", "x" * 40, "0abc-9"])
def test_dns_labels_up_to_40_characters_are_accepted(tenant_id):
    assert validate_tenant_id(tenant_id) == tenant_id


def test_tiers_are_exactly_the_seed():
    assert {name: (t.cpu, t.memory) for name, t in TIERS.items()} == {
        "micro": ("100m", "128Mi"),
        "small": ("250m", "512Mi"),
        "medium": ("500m", "1Gi"),
        "large": ("2000m", "4Gi"),
        "xlarge": ("8000m", "16Gi"),
        "enterprise": ("16000m", "32Gi"),
    }
    for tier in TIERS.values():
        assert cpu_millicores(tier.cpu) == tier.cpu_millicores
        assert memory_mib(tier.memory) == tier.memory_mib


def test_priorities_map_to_strictly_decreasing_run_priorities_and_one_class_each():
    order = [Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW, Priority.BATCH]
    values = [p.run_priority for p in order]
    assert values == sorted(values, reverse=True) and len(set(values)) == len(values)
    assert [p.priority_class for p in order] == [f"spotify-jobs-{p.value}" for p in order]


@pytest.mark.parametrize(
    ("parse", "bad", "allowed"),
    [
        (tier_spec, "huge", "enterprise"),
        (priority_of, "urgent", "batch"),
        (job_type_of, "mining", "data-etl"),
    ],
)
def test_unknown_names_list_what_is_allowed(parse, bad, allowed):
    with pytest.raises(ValueError, match=allowed):
        parse(bad)


def test_job_types_accept_both_spellings():
    assert job_type_of("ml_training") is JobType.ML_TRAINING is job_type_of("ml-training")


def test_demo_registry_has_the_three_demo_tenants():
    registry = load_registry()
    assert {"enterprise-001", "premium-client-001", "startup-042"} <= set(registry.ids)
    assert registry.get("startup-042").tier == "small"
    with pytest.raises(UnknownTenant, match="registered: enterprise-001"):
        registry.get("nobody-here")
    with pytest.raises(InvalidTenantId):
        registry.get("../enterprise-001")


def _write(tmp_path, payload) -> str:
    path = tmp_path / "tenants.yaml"
    path.write_text(payload if isinstance(payload, str) else yaml.safe_dump(payload))
    return str(path)


TENANT = {"id": "t-1", "display_name": "T", "tier": "small", "quota": {"cpu": "2", "memory": "4Gi"}}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("tenants: [", "cannot read"),
        ("- just a list", "must be a mapping"),
        ({"tenants": [TENANT, TENANT]}, "appears twice"),
        ({"tenants": [{**TENANT, "tier": "gigantic"}]}, "unknown tier"),
        ({"tenants": [{**TENANT, "id": "Bad_Id"}]}, "DNS-1123"),
        ({"tenants": [{**TENANT, "colour": "blue"}]}, "colour"),
        ({"tenants": [{**TENANT, "max_concurrent_runs": 0}]}, "max_concurrent_runs"),
    ],
)
def test_malformed_registry_fails_with_the_reason(tmp_path, payload, message):
    with pytest.raises(TenantRegistryError, match=message):
        load_registry(_write(tmp_path, payload))


def test_missing_registry_file_is_named(tmp_path):
    with pytest.raises(TenantRegistryError, match=r"nope\.yaml"):
        load_registry(tmp_path / "nope.yaml")


@pytest.mark.parametrize("bad", ["1.5Gb", "lots", "-1", "2k"])
def test_bad_quantities_are_rejected(bad):
    with pytest.raises(ValueError, match="quantity"):
        cpu_millicores(bad)
    with pytest.raises(ValueError, match="quantity"):
        memory_mib(bad)


@pytest.mark.parametrize(
    "key",
    [tenant_date_key("startup-042", "2026-11-01"), "2026-11-01|startup-042"],
    ids=["MultiPartitionKey", "string form"],
)
def test_tenant_and_time_of_a_multi_partition_key_in_either_form(key):
    assert tenant_of(key) == "startup-042"
    assert time_of(key) == "2026-11-01"


@pytest.mark.parametrize("key", ["2026-11-01|../etc", "a|b|c"])
def test_malformed_multi_partition_strings_are_refused(key):
    with pytest.raises(ValueError):
        tenant_of(key)
