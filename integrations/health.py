"""Checking integrations for operators (``manage.py check_integrations``): every inbound connection's recorded
health, outbound endpoints the circuit breaker turned off, and, when asked, a live call to each provider with the
connection's own credentials. A check reads and calls; it never changes a connection or emails anyone."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.utils import timezone

from .constants import ConnectionStatus, IntegrationProvider
from .models import IntegrationConnection, WebhookEndpoint

# Providers that post to LeadFlow: nothing to call, their health is what arrived.
INBOUND_ONLY = frozenset({IntegrationProvider.GOOGLE_ADS, IntegrationProvider.WEBHOOK, IntegrationProvider.FORM})


@dataclass
class HealthReport:
    subject: str
    organization: str
    state: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    probe: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def _probe_facebook(connection: IntegrationConnection) -> tuple[bool, str]:
    from .providers import facebook

    token = connection.credential("page_access_token")
    if not token:
        return False, "no page access token stored"
    try:
        page = facebook.page_fetch(access_token=token)
    except facebook.GraphError as error:
        return False, error.message
    if connection.external_account_id and str(page.get("id")) != connection.external_account_id:
        return False, f"the token belongs to page {page.get('id')}, not {connection.external_account_id}"
    return True, f"Graph API answered for page {page.get('name') or page.get('id')}"


def _probe_linkedin(connection: IntegrationConnection) -> tuple[bool, str]:
    from .providers import linkedin

    token = connection.credential("access_token")
    account = connection.settings.get("sponsored_account") or connection.external_account_id
    if not token or not account:
        return False, "no access token or sponsored account stored"
    now_ms = int(timezone.now().timestamp() * 1000)
    try:
        # An empty time window: one authenticated request that returns nothing.
        list(
            linkedin.form_responses_since(
                access_token=token, sponsored_account=account, since_ms=now_ms, until_ms=now_ms
            )
        )
    except linkedin.LinkedInError as error:
        return False, error.message
    return True, "LinkedIn API answered"


PROBES = {IntegrationProvider.FACEBOOK: _probe_facebook, IntegrationProvider.LINKEDIN: _probe_linkedin}


def connection_health(connection: IntegrationConnection, *, probe: bool = False) -> HealthReport:
    report = HealthReport(
        subject=f"{connection.get_provider_display()} “{connection.name}” (#{connection.pk})",
        organization=connection.organization.slug,
        state=connection.status,
    )
    if connection.status == ConnectionStatus.ERROR:
        report.problems.append(
            f"needs attention after {connection.consecutive_errors} failure(s) in a row: {connection.last_error[:200]}"
        )
    elif connection.consecutive_errors:
        report.warnings.append(f"{connection.consecutive_errors} recent failure(s): {connection.last_error[:200]}")
    if connection.last_success_at is None and connection.status != ConnectionStatus.DISCONNECTED:
        report.warnings.append("has never received or fetched anything")
    if probe and connection.status != ConnectionStatus.DISCONNECTED:
        if connection.provider in INBOUND_ONLY:
            report.probe = "nothing to call: the provider posts to LeadFlow"
        else:
            reachable, detail = PROBES[connection.provider](connection)
            report.probe = detail
            if not reachable:
                report.problems.append(f"probe failed: {detail}")
    return report


def endpoint_health(endpoint: WebhookEndpoint) -> HealthReport:
    report = HealthReport(
        subject=f"Webhook endpoint {endpoint.url} (#{endpoint.pk})",
        organization=endpoint.organization.slug,
        state="active" if endpoint.is_active else "disabled",
    )
    if not endpoint.is_active and endpoint.disabled_reason:
        report.problems.append(f"disabled {endpoint.disabled_at:%Y-%m-%d %H:%M}: {endpoint.disabled_reason}")
    elif endpoint.is_active and endpoint.failing_since:
        report.warnings.append(
            f"failing since {endpoint.failing_since:%Y-%m-%d %H:%M} ({endpoint.consecutive_failures} attempt(s))"
        )
    return report


def integrations_health(*, organization=None, probe: bool = False) -> list[HealthReport]:
    """Every connection (disconnected ones are the organization's choice and left out) and every endpoint the
    breaker disabled or that is failing now, of active organizations."""
    connections: QuerySet = (
        IntegrationConnection.objects.unscoped()
        .select_related("organization")
        .filter(organization__is_active=True)
        .exclude(status=ConnectionStatus.DISCONNECTED)
        .order_by("organization__slug", "provider", "id")
    )
    endpoints: QuerySet = (
        WebhookEndpoint.objects.unscoped()
        .select_related("organization")
        .filter(organization__is_active=True)
        .order_by("organization__slug", "id")
    )
    if organization is not None:
        connections = connections.filter(organization=organization)
        endpoints = endpoints.filter(organization=organization)
    return [
        *(connection_health(connection, probe=probe) for connection in connections),
        *(endpoint_health(endpoint) for endpoint in endpoints),
    ]
