"""Fixtures of the security tests: a tenant whose files went through the real generator and ETL."""

from __future__ import annotations

import pytest

from spotify_jobs_tests.security.helpers import TENANT, etl_tenant


@pytest.fixture
def clean_tenant(platform):
    """`TENANT`'s data after the ETL: landing exports (personal data) and pseudonymised outputs."""
    etl_tenant(platform)
    return platform.tenant_storage(TENANT)
