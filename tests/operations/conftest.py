from __future__ import annotations

import pytest

from tests.factories import UserFactory


@pytest.fixture
def operator(db):
    """A platform operator: staff and superuser, member of no organization."""
    user = UserFactory(email="operator@leadflow.local", is_staff=True, is_superuser=True)
    return user


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client
