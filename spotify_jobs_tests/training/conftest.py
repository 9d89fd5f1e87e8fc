"""Training fixtures: a tenant with synthetic listening events (latent taste) in local tenant storage."""

from __future__ import annotations

import pandas as pd
import pytest

from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.training.config import DatasetConfig
from spotify_jobs.training.dataset import Interactions, build_interactions, data_window, encode
from spotify_jobs.training.synthetic import synthetic_listening_events, write_listening_events

from .tenant_data import EVENTS, TENANT


@pytest.fixture(scope="session")
def events() -> pd.DataFrame:
    return synthetic_listening_events(**EVENTS)


@pytest.fixture(scope="session")
def dataset_frame(events) -> pd.DataFrame:
    return build_interactions(events, data_window(events["event_date"], DatasetConfig()))


@pytest.fixture(scope="session")
def interactions(dataset_frame) -> Interactions:
    return encode(dataset_frame)


@pytest.fixture
def storage(platform) -> TenantStorage:
    return platform.tenant_storage(TENANT)


@pytest.fixture
def tenant_events(storage, events) -> TenantStorage:
    """`storage` holding the synthetic events as the ETL writes them, one file per date."""
    write_listening_events(storage, events)
    return storage
