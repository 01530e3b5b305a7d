from __future__ import annotations

import pytest

from accounts.constants import Role
from tests.conftest import member_of
from tests.factories import make_api_key


@pytest.fixture
def ingest_client(api_client, organization):
    """An API client holding an ingest-scoped key of ``organization``."""
    _, raw_key = make_api_key(organization, scopes=["ingest"])
    api_client.credentials(HTTP_X_API_KEY=raw_key)
    return api_client


@pytest.fixture
def manager(organization):
    return member_of(organization, Role.MANAGER)


@pytest.fixture
def manager_client(api_client, manager):
    api_client.force_authenticate(user=manager)
    return api_client
