"""Automatic assignment (round robin, least loaded, rules, capacity and the unassigned queue) and scoring."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.constants import Role
from accounts.models import Membership
from leadflow.tenancy.context import organization_scope
from leads.constants import StageKind
from leads.intake.pipeline import lead_intake
from leads.models import AssignmentRule, Lead, PipelineStage, ScoringRule
from leads.scoring import RuleScorer, rule_matches
from leads.services.assignment import assignment_drain_queue
from leads.services.leads import lead_change_stage
from tests.conftest import member_of
from tests.factories import LeadFactory, ScoringRuleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(organization):
    organization.assignment_strategy = "round_robin"
    organization.save()
    # The owner fixture is not created here: only these three take leads.
    return [member_of(organization, Role.AGENT) for _ in range(3)]


@pytest.fixture
def arrive(django_capture_on_commit_callbacks):
    """A lead arrives and its lead.created handlers (scoring, assignment) run, as the worker would after commit."""

    def arrive(organization, n, **payload):
        with django_capture_on_commit_callbacks(execute=True):
            outcome = lead_intake(
                organization=organization,
                source=payload.pop("source", "api"),
                payload={"email": f"arrival{n}@example.org", **payload},
            )
        return Lead.objects.unscoped().get(pk=outcome.lead.pk)

    return arrive


def test_round_robin_takes_turns(organization, team, arrive, django_capture_on_commit_callbacks):
    owners = []
    for n in range(6):
        owners.append(arrive(organization, n).owner_id)
    assert owners == [u.pk for u in team] * 2


def test_least_loaded_fills_the_emptiest(organization, team, arrive, django_capture_on_commit_callbacks):
    organization.assignment_strategy = "least_loaded"
    organization.save()
    for _ in range(2):
        LeadFactory(organization=organization, owner=team[0])
    LeadFactory(organization=organization, owner=team[1])
    assert arrive(organization, 1).owner_id == team[2].pk
    assert arrive(organization, 2).owner_id in {team[1].pk, team[2].pk}


def test_rules_route_by_source_and_state(organization, team, arrive, django_capture_on_commit_callbacks):
    with organization_scope(organization):
        rule = AssignmentRule.objects.create(name="Facebook Maharashtra", source="facebook", states=["MH"])
        rule.agents.set([team[2]])
    assert arrive(organization, 1, source="facebook", state="Maharashtra").owner_id == team[2].pk
    assert arrive(organization, 2, source="facebook", state="Goa").owner_id is not None
    assert arrive(organization, 3, source="facebook", state="MH").owner_id == team[2].pk


def test_full_agents_leave_leads_queued_until_capacity_frees(
    organization, team, arrive, django_capture_on_commit_callbacks
):
    Membership.objects.unscoped().filter(user__in=team).update(lead_capacity=1)
    leads = []
    for n in range(5):
        leads.append(arrive(organization, n))
    assert [lead.owner_id is not None for lead in leads] == [True, True, True, False, False]
    # Closing one frees a place: the oldest waiting lead gets it.
    won = PipelineStage.objects.unscoped().get(organization=organization, kind=StageKind.WON)
    with organization_scope(organization), django_capture_on_commit_callbacks(execute=True):
        lead_change_stage(lead=leads[0], stage=won, actor=None)
    queued = Lead.objects.unscoped().filter(pk__in=[leads[3].pk, leads[4].pk]).order_by("received_at")
    assert [lead.owner_id for lead in queued] == [leads[0].owner_id, None]
    # Raising capacity and draining hands out the rest.
    Membership.objects.unscoped().filter(user__in=team).update(lead_capacity=0)
    assert assignment_drain_queue(organization) == 1
    assert Lead.objects.unscoped().get(pk=leads[4].pk).owner_id is not None


def test_manual_strategy_leaves_everything_in_the_queue(organization, arrive):
    member_of(organization, Role.AGENT)
    assert arrive(organization, 1).owner_id is None
    assert assignment_drain_queue(organization) == 0


def test_scores_are_explained(organization):
    lead = LeadFactory.build(
        organization=organization,
        source="form",
        email="a@example.com",
        phone="+919876543210",
        company="Acme",
        city="Pune",
        custom={"budget": "75,000"},
        received_at=timezone.now(),
        consent_given=True,
    )
    rules = [
        ScoringRuleFactory.build(label="Budget ≥ 50k", field="custom.budget", operator="gte", value="50000", points=20)
    ]
    result = RuleScorer().score(lead, rules)
    labels = {reason["label"]: reason["points"] for reason in result.reasons}
    assert (
        labels["Valid phone number"] == 20 and labels["Budget ≥ 50k"] == 20 and labels["Arrived in the last hour"] == 15
    )
    assert result.score == min(100, sum(labels.values())) and result.grade == "hot"
    old_csv = LeadFactory.build(
        organization=organization,
        source="csv",
        email="",
        phone="+919876543210",
        first_name="",
        full_name="",
        received_at=timezone.now() - timedelta(days=30),
    )
    cold = RuleScorer().score(old_csv, [])
    assert cold.grade == "cold" and cold.score == 23


@pytest.mark.parametrize(
    ("operator", "value", "lead_value", "expected"),
    [
        ("equals", "Pune", "pune", True),
        ("not_equals", "Pune", "Mumbai", True),
        ("contains", "sun", "Sunrise Homes", True),
        ("in", "mh, ka", "KA", True),
        ("gte", "100", "99", False),
        ("lte", "100", "1,00", True),
        ("is_set", "", "", False),
        ("is_empty", "", "", True),
        ("gte", "100", "lots", False),
    ],
)
def test_rule_operators(operator, value, lead_value, expected):
    rule = ScoringRule(label="r", field="city", operator=operator, value=value, points=5)
    assert rule_matches(rule, Lead(city=lead_value)) is expected


def test_rescore_command_applies_new_rules(organization, arrive):
    lead = arrive(organization, 1, custom={"timeline": "this month"})
    before = lead.score
    ScoringRuleFactory(
        organization=organization,
        label="Buying now",
        field="custom.timeline",
        operator="equals",
        value="this month",
        points=30,
    )
    call_command("rescore_leads", "--organization", organization.slug)
    lead.refresh_from_db()
    assert lead.score == min(100, before + 30)
    assert {"points": 30, "label": "Buying now"} in lead.score_reasons


def test_editing_a_lead_rescores_it(manager_client, organization):
    lead = LeadFactory(organization=organization, company="", city="")
    manager_client.patch(f"/api/v1/leads/{lead.pk}/", {"company": "Acme", "city": "Pune"}, format="json")
    lead.refresh_from_db()
    assert any("profile details" in reason["label"] for reason in lead.score_reasons)


def test_admins_set_who_takes_leads_and_capacity_over_the_api(user_api_client, organization, team, arrive):
    admin = user_api_client(Role.ADMIN)
    membership = Membership.objects.unscoped().get(organization=organization, user=team[0])
    response = admin.patch(
        f"/api/v1/members/{membership.pk}/", {"receives_leads": False, "lead_capacity": 5}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["receives_leads"], response.json()["lead_capacity"]) == (False, 5)
    assert admin.patch(f"/api/v1/members/{membership.pk}/", {"lead_capacity": -1}, format="json").status_code == 400
    owners = {arrive(organization, n).owner_id for n in range(4)}
    assert team[0].pk not in owners
    manager = user_api_client(Role.MANAGER)
    assert manager.patch(f"/api/v1/members/{membership.pk}/", {"lead_capacity": 1}, format="json").status_code == 403


def test_leads_are_born_scored_with_the_rules_just_saved(organization):
    """Intake scores with the rule scorer before the INSERT; a rule saved a moment ago applies to the next lead."""
    first = lead_intake(organization=organization, source="api", payload={"email": "a@example.com"}).lead
    ScoringRuleFactory(
        organization=organization, label="Gmail", field="email", operator="contains", value="gmail", points=5
    )
    second = lead_intake(organization=organization, source="api", payload={"email": "b@gmail.com"}).lead
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.score > 0 and first.grade and first.score_reasons
    assert second.score == first.score + 5 and {"points": 5, "label": "Gmail"} in second.score_reasons


class FixedScorer:
    """Stands in for a remote (AI) scorer: only the worker may call it."""

    def score(self, lead, rules):
        from leads.scoring import ScoreResult

        return ScoreResult(score=42, grade="warm", reasons=[{"points": 42, "label": "Model says so"}])


def test_another_scorer_runs_in_the_worker_over_the_rule_baseline(organization, arrive, settings):
    settings.LEADFLOW_LEAD_SCORER = "tests.leads.test_assignment_and_scoring.FixedScorer"
    lead = arrive(organization, 1)
    lead.refresh_from_db()
    assert (lead.score, lead.score_reasons) == (42, [{"points": 42, "label": "Model says so"}])
