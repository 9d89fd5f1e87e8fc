"""Fixtures of the deploy tests: the tenant registry and the production cluster profile."""

from __future__ import annotations

import pytest

from spotify_jobs.k8s.tenant_objects import ClusterProfile
from spotify_jobs.settings import load_settings
from spotify_jobs.tenancy.registry import load_registry
from spotify_jobs_tests.deploy.tree import PRODUCTION_PROFILE


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture(scope="session")
def production_profile() -> ClusterProfile:
    # The profile sets every field; development settings underneath keep the shell's variables out.
    return ClusterProfile.load(load_settings(environment="development"), PRODUCTION_PROFILE)
