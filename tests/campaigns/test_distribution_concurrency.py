"""The engine under load: 16 threads distributing 2,000 leads at once into campaigns whose buyers share tight caps and
small wallets. Real PostgreSQL transactions (``transaction=True``), real row locks, no mocking.

Every lead is submitted once and about one in six a second time from another thread (a retried ingest), and
about one in eight is the same person as an earlier lead. Afterwards: no cap exceeded, no wallet below its credit
limit or weekly spending limit, no lead or person sold twice to a buyer, every wallet equal to its ledger, every
lead with one outcome, and no thread saw an error (a deadlock or a constraint violation would surface here).
"""

from __future__ import annotations

import queue
import random
import threading
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from campaigns.models import LeadDistribution, LeadSale, Wallet, WalletEntry
from campaigns.services.distribution import lead_distribute
from campaigns.services.wallets import wallet_credit
from leads.models import Lead
from leads.services.stages import stages_ensure_default
from tests.factories import BuyerFactory, BuyerSubscriptionFactory, CampaignFactory, OrganizationFactory

THREADS = 16
LEADS = 2000
PRICE = Decimal("10.00")

# buyer → (funds, credit limit); campaign → [(buyer, caps)]
BUYERS = {
    "alpha": ("150.00", "0"),
    "bravo": ("200.00", "30.00"),
    "charlie": ("120.00", "0"),
    "delta": ("300.00", "0"),
    "echo": ("90.00", "20.00"),
    "foxtrot": ("250.00", "0"),
}
# Weekly spending limits, checked under the same wallet locks as caps and money.
SPEND_LIMITS = {"delta": "220.00", "foxtrot": "190.00"}
CAMPAIGNS = {
    "round_robin": [("alpha", {"hourly_cap": 12}), ("bravo", {"daily_cap": 15}), ("charlie", {"hourly_cap": 20})],
    "weighted": [("bravo", {"hourly_cap": 10, "weight": 3}), ("delta", {"daily_cap": 25, "weight": 1}), ("echo", {})],
    "waterfall": [
        ("delta", {"hourly_cap": 14, "priority": 1}),
        ("foxtrot", {"daily_cap": 16, "priority": 2}),
        ("alpha", {"priority": 3}),
    ],
    "broadcast": [("charlie", {"daily_cap": 9}), ("echo", {"hourly_cap": 8}), ("foxtrot", {"weekly_cap": 12})],
}


@pytest.mark.django_db(transaction=True)
def test_concurrent_distribution_keeps_every_invariant():
    rng = random.Random(5)
    organization = OrganizationFactory()
    stage = stages_ensure_default(organization=organization)[0]
    buyers = {}
    for name, (funds, credit_limit) in BUYERS.items():
        buyers[name] = BuyerFactory(
            organization=organization,
            name=name,
            credit_limit=Decimal(credit_limit),
            weekly_spend_limit=Decimal(SPEND_LIMITS[name]) if name in SPEND_LIMITS else None,
        )
        wallet_credit(buyer=buyers[name], amount=funds)
    campaigns, subscriptions = {}, []
    for logic, members in CAMPAIGNS.items():
        campaigns[logic] = CampaignFactory(organization=organization, distribution_logic=logic, price_per_lead=PRICE)
        for buyer_name, fields in members:
            subscriptions.append(
                BuyerSubscriptionFactory(
                    organization=organization, buyer=buyers[buyer_name], campaign=campaigns[logic], **fields
                )
            )

    people, rows = [], []
    for index in range(LEADS):
        if people and rng.random() < 0.125:
            email, phone = rng.choice(people)  # the same person again: a new lead with the same contacts
        else:
            email, phone = f"person{index}@example.com", f"+9197{index:08d}"
            people.append((email, phone))
        if rng.random() < 0.1:
            email = f"alias{index}@example.com"  # only the phone matches: still the same person to the guard
        rows.append(Lead(organization=organization, stage=stage, source="api", email=email, phone=phone))
    Lead.objects.unscoped().bulk_create(rows)
    leads = list(Lead.objects.unscoped().filter(organization=organization).order_by("id"))
    logics = list(CAMPAIGNS)
    work = [(lead, campaigns[logics[index % len(logics)]]) for index, lead in enumerate(leads)]
    retried = rng.sample(work, len(work) // 6)
    jobs = work + retried
    rng.shuffle(jobs)

    tasks: queue.Queue = queue.Queue()
    for job in jobs:
        tasks.put(job)
    now = timezone.now()  # one clock for every call: cap windows cannot roll over mid-test
    errors, outcomes = [], []
    start = threading.Barrier(THREADS)

    def worker():
        try:
            start.wait()
            while True:
                try:
                    lead, campaign = tasks.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcomes.append(lead_distribute(lead=lead, campaign=campaign, now=now))
                except Exception as error:  # every failure, a deadlock included, is the test's finding
                    errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung (a lock never released?)"

    assert errors == []
    assert len(outcomes) == len(jobs)
    assert sum(o.replayed for o in outcomes) == len(retried)

    # Every lead has exactly one outcome in its campaign, and retries saw that same outcome.
    distributions = LeadDistribution.objects.unscoped().filter(organization=organization)
    assert distributions.count() == LEADS
    assert set(distributions.values_list("lead_id", flat=True)) == {lead.pk for lead in leads}
    by_lead = defaultdict(set)
    for outcome in outcomes:
        by_lead[outcome.lead_id].add((outcome.distribution_id, outcome.status, outcome.sales))
    assert all(len(seen) == 1 for seen in by_lead.values())

    sales = LeadSale.objects.unscoped().filter(organization=organization)
    # No double deliveries: a lead once per buyer, a person once per buyer and campaign.
    assert not sales.values("lead", "buyer").annotate(n=Count("id")).filter(n__gt=1).exists()
    for field in ("lead__email", "lead__phone"):
        assert not sales.values("buyer", "campaign", field).annotate(n=Count("id")).filter(n__gt=1).exists(), field

    # No cap exceeded (every sale is in the same hour, day, week and month).
    sold = Counter(sales.values_list("subscription_id", flat=True))
    for sub in subscriptions:
        caps = [c for c in (sub.hourly_cap, sub.daily_cap, sub.weekly_cap, sub.monthly_cap) if c is not None]
        assert sold[sub.pk] <= min(caps, default=LEADS), (sub.buyer.name, sub.campaign.distribution_logic)

    # Money: never below the credit limit, always the ledger's sum, and exactly the funds minus the sales.
    for name, buyer in buyers.items():
        funds, credit_limit = (Decimal(x) for x in BUYERS[name])
        wallet = Wallet.objects.unscoped().get(buyer=buyer)
        ledger = WalletEntry.objects.unscoped().filter(buyer=buyer).aggregate(total=Sum("amount"))["total"]
        spent = sales.filter(buyer=buyer).aggregate(total=Sum("price"))["total"] or Decimal(0)
        assert wallet.balance >= -credit_limit, name
        if name in SPEND_LIMITS:
            assert spent <= Decimal(SPEND_LIMITS[name]), name
        assert wallet.balance == ledger == funds - spent, name
        last = WalletEntry.objects.unscoped().filter(buyer=buyer).order_by("-id").first()
        assert last.balance_after == wallet.balance, name

    # The load was real: caps and wallets both turned buyers away, and plenty still sold.
    reasons = Counter(reason for d in distributions for reason in d.reasons.values())
    assert reasons["capped"] and reasons["insufficient_funds"] and reasons["already_bought"]
    assert reasons["spending_limit"]
    assert sales.count() > 100
