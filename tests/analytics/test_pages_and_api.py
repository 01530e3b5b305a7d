"""The analytics pages, their CSV downloads and the API: every report renders, filters validate, roles hold, query
counts stay bounded, and another organization's figures never appear anywhere."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.constants import Role
from analytics.reports import REPORTS
from analytics.services import rollups_rebuild
from tests.conftest import member_of
from tests.factories import (
    BuyerFactory,
    CampaignFactory,
    CampaignSubmissionFactory,
    InboundSubmissionFactory,
    LeadDistributionFactory,
    LeadFactory,
    LeadSaleFactory,
    MessageFactory,
    OrganizationFactory,
    SupplierFactory,
    make_api_key,
)

pytestmark = pytest.mark.django_db


def workspace(organization, prefix: str, leads: int):
    """``leads`` leads two days ago, the first sold to a buyer and posted by a supplier, a message sent."""
    campaign = CampaignFactory(organization=organization, name=f"{prefix} Campaign", ad_spend=Decimal("0"))
    buyer = BuyerFactory(organization=organization, name=f"{prefix} Buyer")
    supplier = SupplierFactory(organization=organization, name=f"{prefix} Supplier")
    when = timezone.now() - timedelta(days=2)
    made = [LeadFactory(organization=organization, received_at=when, source="facebook") for _ in range(leads)]
    distribution = LeadDistributionFactory(organization=organization, lead=made[0], campaign=campaign, status="sold")
    LeadSaleFactory(organization=organization, distribution=distribution, buyer=buyer, created_at=when)
    CampaignSubmissionFactory(
        organization=organization,
        submission=InboundSubmissionFactory(organization=organization, lead=made[0]),
        campaign=campaign,
        supplier=supplier,
        lead=made[0],
        outcome="accepted",
        payout=Decimal("3.00"),
        created_at=when,
    )
    MessageFactory(organization=organization, direction="out", status="delivered", created_at=when)
    rollups_rebuild(organization=organization)
    return campaign


@pytest.fixture
def figures(organization):
    ours = workspace(organization, "Alpha", 3)
    theirs = workspace(OrganizationFactory(), "Secret Beta", 5)
    return ours, theirs


@pytest.fixture
def manager_client(client, organization):
    client.force_login(member_of(organization, Role.MANAGER))
    return client


@pytest.mark.parametrize("name", list(REPORTS))
def test_every_report_page_renders_our_figures_only(manager_client, figures, name):
    response = manager_client.get(f"/analytics/{name}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="report-chart"' in html and 'data-testid="report-table"' in html
    assert f"/analytics/{name}/csv/" in html and "chartjs/chart.umd.min.js" in html
    assert "Secret Beta" not in html
    # Every report's tab is on every page.
    assert all(f'data-testid="tab-{other}"' in html for other in REPORTS)


def test_leads_page_table_and_htmx_partial(manager_client, figures):
    page = manager_client.get("/analytics/leads/", {"preset": "7d", "granularity": "day", "group_by": "campaign"})
    html = page.content.decode()
    assert "Alpha Campaign" in html and "No campaign" in html
    partial = manager_client.get("/analytics/leads/", {"preset": "7d"}, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert partial.status_code == 200 and body.lstrip().startswith('<section id="report"') and "<html" not in body


def test_csv_download_is_the_table(manager_client, figures):
    response = manager_client.get("/analytics/leads/csv/", {"preset": "30d", "group_by": "source"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Day", "Source", "Leads", "Duplicates", "Contacted", "Won"]
    assert rows[-1][0] == "Total" and rows[-1][2] == "3"
    assert [row[1] for row in rows[1:-1]] == ["Facebook Lead Ads"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "2026-10-10", "date_to": "2026-10-01"}, "date_to"),
        ({"date_from": "2026-10-10"}, "date_to"),
        ({"date_from": "2026-01-01", "date_to": "2026-10-01", "granularity": "day"}, "granularity"),
        ({"source": "carrier-pigeon"}, "source"),
    ],
)
def test_filters_are_validated(manager_client, api_client, organization, figures, params, field):
    page = manager_client.get("/analytics/leads/", params)
    assert page.status_code == 400 and 'data-testid="filter-errors"' in page.content.decode()
    assert manager_client.get("/analytics/leads/csv/", params).status_code == 400
    _, key = make_api_key(organization, scopes=("read",))
    api = api_client.get("/api/v1/analytics/leads/", params, HTTP_X_API_KEY=key)
    assert api.status_code == 400 and field in api.json()["errors"]


def test_another_organizations_campaign_is_not_a_choice(manager_client, api_client, organization, figures):
    _, theirs = figures
    assert manager_client.get("/analytics/leads/", {"campaign": theirs.pk}).status_code == 400
    _, key = make_api_key(organization, scopes=("read",))
    response = api_client.get("/api/v1/analytics/leads/", {"campaign": theirs.pk}, HTTP_X_API_KEY=key)
    assert response.status_code == 400 and "campaign" in response.json()["errors"]


def test_pages_need_a_manager(client, organization, figures):
    client.force_login(member_of(organization, Role.AGENT))
    assert client.get("/analytics/leads/").status_code == 403
    assert client.get("/analytics/leads/csv/").status_code == 403
    assert ">Analytics<" not in client.get("/leads/").content.decode()
    client.force_login(member_of(organization, Role.MANAGER))
    assert ">Analytics<" in client.get("/leads/").content.decode()
    assert client.get("/analytics/").status_code == 302
    assert client.get("/analytics/nope/").status_code == 404


@pytest.mark.parametrize("name", list(REPORTS))
def test_api_report_is_ours_bounded_and_downloadable(
    api_client, organization, figures, django_assert_max_num_queries, name
):
    _, key = make_api_key(organization, scopes=("read",))
    api_client.credentials(HTTP_X_API_KEY=key)
    # Authentication and the key's organization, the filters' choices, the rollups (months and end days) and the
    # labels: a handful of statements, whatever the number of leads.
    with django_assert_max_num_queries(14):
        response = api_client.get(f"/api/v1/analytics/{name}/", {"preset": "30d"})
    assert response.status_code == 200
    body = response.json()
    assert body["report"] == name and [c["key"] for c in body["columns"]] and "rows" in body
    assert "Secret Beta" not in response.content.decode()
    download = api_client.get(f"/api/v1/analytics/{name}/", {"preset": "30d", "format": "csv"})
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert "Secret Beta" not in download.content.decode("utf-8-sig")


def test_api_figures_and_roles(api_client, user_api_client, organization, figures):
    manager = user_api_client(Role.MANAGER)
    body = manager.get("/api/v1/analytics/leads/", {"preset": "30d"}).json()
    assert body["totals"]["leads"] == 3 and body["timezone"] == organization.timezone
    buyers = manager.get("/api/v1/analytics/buyers/", {"preset": "30d"}).json()
    assert buyers["rows"] == [
        {
            "buyer": "Alpha Buyer",
            "sold": 1,
            "returned": 0,
            "return_rate": 0.0,
            "revenue": "10.00",
            "refunded": "0.00",
            "net_revenue": "10.00",
        }
    ]
    suppliers = manager.get("/api/v1/analytics/suppliers/", {"preset": "30d"}).json()
    assert suppliers["rows"][0]["supplier"] == "Alpha Supplier" and suppliers["rows"][0]["payout"] == "3.00"
    assert user_api_client(Role.AGENT).get("/api/v1/analytics/leads/").status_code == 403
    _, write_only = make_api_key(organization, scopes=("ingest",))
    assert api_client.get("/api/v1/analytics/leads/", HTTP_X_API_KEY=write_only).status_code == 403


def test_schema_documents_every_report():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for name in REPORTS:
        operation = schema["paths"][f"/api/v1/analytics/{name}/"]["get"]
        assert operation["operationId"] == f"analytics_{name}"
        assert {"preset", "date_from", "date_to", "format"} <= {p["name"] for p in operation["parameters"]}
