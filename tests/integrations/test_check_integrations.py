"""manage.py check_integrations: recorded health, endpoints the breaker disabled, live probes against stand-ins of
the Graph and LinkedIn APIs, and the exit status."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.models import IntegrationConnection
from tests.factories import IntegrationConnectionFactory, OrganizationFactory, WebhookEndpointFactory
from tests.integrations.test_facebook import PAGE_ID, PAGE_TOKEN, graph  # noqa: F401 - the fixture
from tests.integrations.test_linkedin_inbound import ACCOUNT, TOKEN, linkedin_api  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def check(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_integrations", *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def test_healthy_connections_pass(organization):
    IntegrationConnectionFactory(organization=organization, last_success_at=timezone.now())
    code, out = check()
    assert code == 0
    assert "1 checked, 0 with problems, 0 with warnings." in out


def test_a_connection_in_error_and_a_disabled_endpoint_fail_the_check(organization):
    IntegrationConnectionFactory(
        organization=organization,
        name="Zap in trouble",
        status="error",
        consecutive_errors=5,
        last_error="HTTP 500 from the mapper",
        last_success_at=timezone.now(),
    )
    WebhookEndpointFactory(
        organization=organization,
        url="https://crm.example.com/gone",
        is_active=False,
        disabled_at=timezone.now(),
        disabled_reason="The receiver answered 410 Gone.",
    )
    IntegrationConnectionFactory(organization=organization, name="Flaky", consecutive_errors=2, last_error="timeout")
    code, out = check()
    assert code == 1
    assert "[PROBLEM]" in out and "Zap in trouble" in out and "HTTP 500 from the mapper" in out
    assert "410 Gone" in out
    assert "[warning]" in out and "Flaky" in out
    assert "with problems" in out


def test_disconnected_connections_and_suspended_organizations_are_left_out(organization):
    IntegrationConnectionFactory(organization=organization, status="disconnected")
    suspended = OrganizationFactory(is_active=False)
    IntegrationConnectionFactory(organization=suspended, status="error")
    assert check()[0] == 0


def test_probes_call_each_provider_with_the_stored_token(organization, graph, linkedin_api):  # noqa: F811
    IntegrationConnectionFactory(
        organization=organization,
        provider="facebook",
        name="Page",
        credentials={"page_access_token": PAGE_TOKEN},
        external_account_id=PAGE_ID,
        last_success_at=timezone.now(),
    )
    IntegrationConnectionFactory(
        organization=organization,
        provider="linkedin",
        name="Ads",
        credentials={"access_token": TOKEN},
        settings={"sponsored_account": ACCOUNT},
        last_success_at=timezone.now(),
    )
    graph.routes[("GET", f"{graph.prefix}/me")] = [(200, {"id": PAGE_ID, "name": "Acme Realty"})]
    linkedin_api.routes["/rest/leadFormResponses"] = [(200, {"elements": [], "paging": {"total": 0}})]

    code, out = check("--probe", "--json")
    assert code == 0, out
    reports = {report["subject"].split(" “")[0]: report for report in json.loads(out)}
    assert reports["Facebook Lead Ads"]["probe"] == "Graph API answered for page Acme Realty"
    assert reports["LinkedIn Lead Gen"]["probe"] == "LinkedIn API answered"
    me = next(request for request in graph.requests if request.path.endswith("/me"))
    assert me.query["access_token"] == [PAGE_TOKEN]
    assert linkedin_api.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"

    # A revoked token fails the probe (and the check) without touching the connection's recorded health.
    graph.routes[("GET", f"{graph.prefix}/me")] = [(400, {"error": {"message": "Session has expired", "code": 190}})]
    code, out = check("--probe")
    assert code == 1
    assert "probe failed: Graph API error 190: Session has expired" in out
    assert IntegrationConnection.objects.unscoped().get(provider="facebook").status == "connected"


def test_one_organization_only(organization, other_organization):
    IntegrationConnectionFactory(organization=other_organization, status="error", last_error="broken")
    assert check("--organization", organization.slug)[0] == 0
    assert check("--organization", other_organization.slug)[0] == 1
    with pytest.raises(CommandError, match="No organization"):
        call_command("check_integrations", "--organization", "nope", stdout=StringIO())
