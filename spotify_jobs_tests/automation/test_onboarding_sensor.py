"""Protects tenant onboarding: registry additions become `tenants` partitions (audited), nothing is ever
removed automatically, and an offboarded tenant is not added back while its entry remains."""

from __future__ import annotations

import dagster as dg

from spotify_jobs.automation.sensors import ONBOARDING_SENSOR
from spotify_jobs.observability.audit import AuditTrail
from spotify_jobs.resources import PlatformResource
from spotify_jobs.tenancy.partitions import tenant_partitions
from spotify_jobs_tests.automation.conftest import tenant_entry, write_registry


def tick(test_defs, instance, platform, cursor=None):
    context = dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        resources={"platform": platform},
        definitions=test_defs,
    )
    result = test_defs.get_sensor_def(ONBOARDING_SENSOR).evaluate_tick(context)
    for request in result.dynamic_partitions_requests or []:  # what the daemon does with them
        assert isinstance(request, dg.AddDynamicPartitionsRequest), "the sensor never removes tenants"
        assert request.partitions_def_name == tenant_partitions.name
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def added(result) -> list[str]:
    return [key for request in result.dynamic_partitions_requests or [] for key in request.partition_keys]


def test_registered_tenants_are_added_once_and_audited(test_defs, instance, registry_settings):
    settings = registry_settings([tenant_entry("acme"), tenant_entry("globex")])
    platform = PlatformResource.from_settings(settings)

    first = tick(test_defs, instance, platform)

    assert added(first) == ["acme", "globex"]
    assert sorted(instance.get_dynamic_partitions(tenant_partitions.name)) == ["acme", "globex"]
    for tenant in ("acme", "globex"):
        records = list(AuditTrail(platform.tenant_storage(tenant)).records())
        assert [(r.action, r.actor) for r in records] == [("onboarded", f"sensor:{ONBOARDING_SENSOR}")]
    second = tick(test_defs, instance, platform, first.cursor)
    assert added(second) == []
    assert "no new tenants (2 registered)" in second.skip_message


def test_a_tenant_added_to_the_registry_is_onboarded_without_a_reload(test_defs, instance, registry_settings):
    settings = registry_settings([tenant_entry("acme")])
    platform = PlatformResource.from_settings(settings)
    first = tick(test_defs, instance, platform)

    write_registry(settings.tenant_registry, [tenant_entry("acme"), tenant_entry("initech", tier="medium")])
    second = tick(test_defs, instance, platform, first.cursor)

    assert added(second) == ["initech"]
    [record] = AuditTrail(platform.tenant_storage("initech")).records()
    assert record.details == {"tier": "medium"}


def test_offboarded_tenants_stay_off_and_unregistered_ones_are_only_reported(
    test_defs, instance, registry_settings, capsys
):
    settings = registry_settings([tenant_entry("acme"), tenant_entry("globex")])
    platform = PlatformResource.from_settings(settings)
    first = tick(test_defs, instance, platform)
    instance.delete_dynamic_partition(tenant_partitions.name, "globex")  # what offboard-tenant does

    second = tick(test_defs, instance, platform, first.cursor)
    assert added(second) == []
    assert "globex" not in instance.get_dynamic_partitions(tenant_partitions.name)

    write_registry(settings.tenant_registry, [tenant_entry("globex")])  # acme leaves the registry
    third = tick(test_defs, instance, platform, second.cursor)
    assert added(third) == []
    assert "acme" in instance.get_dynamic_partitions(tenant_partitions.name), "removal is never automatic"
    assert "run offboard-tenant for each): acme" in capsys.readouterr().err

    write_registry(settings.tenant_registry, [tenant_entry("acme")])  # globex is deleted ...
    fourth = tick(test_defs, instance, platform, third.cursor)
    write_registry(settings.tenant_registry, [tenant_entry("acme"), tenant_entry("globex")])  # ... and back
    fifth = tick(test_defs, instance, platform, fourth.cursor)
    assert added(fifth) == ["globex"]
