from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.constants import Role
from leadflow.tenancy.context import organization_scope

from .factories import MembershipFactory, OrganizationFactory, UserFactory, make_api_key


@pytest.fixture
def organization(db):
    return OrganizationFactory()


@pytest.fixture
def other_organization(db):
    return OrganizationFactory()


@pytest.fixture
def owner(organization):
    return MembershipFactory(organization=organization, role=Role.OWNER).user


def member_of(organization, role=Role.AGENT):
    user = UserFactory()
    MembershipFactory(organization=organization, user=user, role=role)
    user.active_organization = organization
    user.save(update_fields=["active_organization"])
    return user


@pytest.fixture
def make_member():
    return member_of


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user_api_client(organization):
    """An API client signed in (by session) as an owner of ``organization``."""

    def build(role=Role.OWNER, org=None):
        client = APIClient()
        client.force_authenticate(user=member_of(org or organization, role))
        return client

    return build


@pytest.fixture
def key_api_client():
    def build(org, scopes=("read", "write", "ingest")):
        _, raw_key = make_api_key(org, scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw_key)
        return client

    return build


@pytest.fixture
def in_scope():
    return organization_scope


def _delete_run_cache_keys() -> None:
    """Delete this run's cache keys (throttle counters, rate limits), never the whole Redis database.

    The test cache has a per-run KEY_PREFIX, so other runs, the channel layer and the Celery broker sharing the
    Redis database are left alone (``cache.clear()`` would FLUSHDB all of them).
    """
    from django.core.cache import cache

    try:
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=cache.make_key("*"), count=500))
        if keys:
            client.delete(*keys)
    except Exception:  # noqa: S110 - no Redis (or not a Redis cache): nothing to reset
        pass


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """API throttles and allauth rate limits count per run in Redis: every test starts from zero. API keys a
    process remembers are forgotten too (a test may change a key's row behind the services' back)."""
    from accounts.services import api_keys_forget
    from campaigns.services.distribution import campaign_members_forget
    from integrations.selectors.connections import connections_forget
    from leads.scoring import rules_forget
    from leads.services.outbox import outbox_organizations_forget
    from leads.services.quota import quota_forget
    from messaging.services.channels import messaging_settings_forget

    _delete_run_cache_keys()
    api_keys_forget()
    rules_forget()
    quota_forget()
    connections_forget()
    messaging_settings_forget()
    outbox_organizations_forget()
    campaign_members_forget()  # a rolled-back test's campaign must not be remembered by the next
    yield
