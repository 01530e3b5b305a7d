"""Deliveries of sold leads, after commit, at the HTTP boundary: a signed webhook and a CRM post arrive at a
loopback receiver, SMS and WhatsApp go to a Twilio stand-in through the official SDK, emails through Django.
Failures are retried; each sale is delivered once per method however often its tasks run; every send is metered."""

from __future__ import annotations

import base64
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from campaigns.models import LeadSale, SaleDelivery
from campaigns.services.deliveries import (
    delivery_method_create,
    sale_deliveries_plan,
    sale_deliveries_sweep,
    sales_deliver,
)
from campaigns.services.distribution import lead_distribute
from integrations.models import WebhookDelivery, WebhookMessage
from integrations.services.webhooks import webhook_deliveries_send_due
from leadflow.exceptions import ServiceError
from messaging.models import UsageRecord
from messaging.services.metering import usage_markup_set
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

TWILIO_SID, TWILIO_TOKEN = "ACbench0000000000000000000000000001", "twilio-test-token"


@pytest.fixture
def seller(organization, market, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the receivers are on loopback
    campaign, [subscription] = market("round_robin", buyers=[{}])
    return campaign, subscription.buyer


def sell(organization, campaign, capture, **lead_fields) -> LeadSale:
    lead = LeadFactory(organization=organization, custom={"age": 71, "coverage": "full"}, **lead_fields)
    with capture(execute=True):
        outcome = lead_distribute(lead=lead, campaign=campaign)
    return LeadSale.objects.unscoped().select_related("lead").get(pk=outcome.sales[0].sale_id)


@pytest.fixture
def twilio(stand_in, settings):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = TWILIO_SID, TWILIO_TOKEN
    settings.TWILIO_API_URL = stand_in.url
    settings.TWILIO_SMS_FROM = "+15005550006"
    settings.TWILIO_WHATSAPP_FROM = "+14155238886"
    stand_in.default = (
        201,
        {"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued", "price": None, "price_unit": "USD"},
    )
    return stand_in


def test_a_signed_webhook_carries_the_sold_lead_and_is_metered(
    organization, seller, stand_in, django_capture_on_commit_callbacks
):
    campaign, buyer = seller
    method = delivery_method_create(buyer=buyer, kind="webhook", url=f"{stand_in.url}/buyer-hook")
    sale = sell(organization, campaign, django_capture_on_commit_callbacks, first_name="Mira", last_name="Das")

    [request] = stand_in.requests
    assert request["path"] == "/buyer-hook"
    payload = Webhook(method.webhook_endpoint.secret).verify(request["body"], request["headers"])
    assert payload["type"] == "lead.sold"
    assert payload["data"]["sale"]["id"] == sale.pk and payload["data"]["sale"]["price"] == "10.00"
    lead = payload["data"]["lead"]
    assert (lead["first_name"], lead["custom"]) == ("Mira", {"age": 71, "coverage": "full"})
    assert not {"stage", "owner", "score", "tags"} & set(lead)  # the seller's CRM stays the seller's
    delivery = SaleDelivery.objects.unscoped().get(sale=sale)
    assert delivery.status == "handed_off" and delivery.webhook_delivery.status == "succeeded"
    [usage] = UsageRecord.objects.unscoped().filter(organization=organization)
    assert (usage.channel, usage.source_key) == ("webhook", f"webhook-delivery:{delivery.webhook_delivery_id}")
    assert usage.context["buyer_id"] == buyer.pk and usage.context["sale_id"] == sale.pk


def test_a_crm_post_sends_the_buyers_template(organization, seller, stand_in, django_capture_on_commit_callbacks):
    campaign, buyer = seller
    template = {
        "FirstName": "{first_name}",
        "Mobile": "{phone}",
        "Age": "{custom.age}",
        "Plan": "{custom.plan}",
        "Note": "From {campaign} at {price} {currency}",
        "Source": "LeadFlow",
        "Hot": True,
    }
    delivery_method_create(buyer=buyer, kind="crm", url=f"{stand_in.url}/crm/leads", field_template=template)
    sale = sell(organization, campaign, django_capture_on_commit_callbacks, first_name="Ravi", phone="+919876512345")
    assert stand_in.json() == {
        "FirstName": "Ravi",
        "Mobile": "+919876512345",
        "Age": 71,
        "Plan": None,
        "Note": f"From {campaign.name} at 10.00 INR",
        "Source": "LeadFlow",
        "Hot": True,
    }
    assert SaleDelivery.objects.unscoped().get(sale=sale).webhook_delivery.status == "succeeded"


def test_a_crm_template_with_unknown_placeholders_is_refused(organization, seller, stand_in):
    _, buyer = seller
    with pytest.raises(ServiceError) as refused:
        delivery_method_create(buyer=buyer, kind="crm", url=stand_in.url, field_template={"Name": "{nmae}"})
    assert refused.value.field == "field_template" and "{nmae}" in refused.value.message


def test_a_failed_webhook_is_retried_and_delivered_once(
    organization, seller, stand_in, django_capture_on_commit_callbacks
):
    campaign, buyer = seller
    delivery_method_create(buyer=buyer, kind="webhook", url=f"{stand_in.url}/flaky")
    stand_in.answers = [(503, {"error": "busy"})]
    sale = sell(organization, campaign, django_capture_on_commit_callbacks)
    webhook = SaleDelivery.objects.unscoped().get(sale=sale).webhook_delivery
    assert (webhook.status, webhook.attempt_count, webhook.last_status_code) == ("pending", 1, 503)
    assert not UsageRecord.objects.unscoped().exists()  # a failed try costs nothing

    WebhookDelivery.objects.unscoped().filter(pk=webhook.pk).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_deliveries_send_due() == 1
    webhook.refresh_from_db()
    assert (webhook.status, webhook.attempt_count) == ("succeeded", 2)
    assert len(stand_in.requests) == 2
    assert stand_in.requests[0]["headers"]["webhook-id"] == stand_in.requests[1]["headers"]["webhook-id"]

    # The delivery task running again (a redelivered task, the sweep) sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        sales_deliver(sale_ids=[sale.pk])
        assert sale_deliveries_plan(sale_id=sale.pk) == []
    assert len(stand_in.requests) == 2
    assert WebhookMessage.objects.unscoped().filter(source_key__startswith=f"sale:{sale.pk}:").count() == 1
    assert UsageRecord.objects.unscoped().count() == 1


def test_email_delivery_and_its_usage_record(organization, seller, django_capture_on_commit_callbacks):
    campaign, buyer = seller
    usage_markup_set(organization=organization, markup_percent="50")
    delivery_method_create(buyer=buyer, kind="email", destination=" Leads@Buyer.Example ")
    sale = sell(organization, campaign, django_capture_on_commit_callbacks, first_name="Tara", last_name="Iyer")
    [message] = mail.outbox
    assert message.to == ["leads@buyer.example"] and "Tara Iyer" in message.subject
    assert "age: 71" in message.body and "Price: 10.00 INR" in message.body
    delivery = SaleDelivery.objects.unscoped().get(sale=sale)
    assert delivery.status == "sent" and delivery.provider_message_id == message.extra_headers["Message-ID"]
    usage = UsageRecord.objects.unscoped().get(source_key=f"sale-delivery:{delivery.pk}")
    assert (usage.channel, usage.provider, usage.currency) == ("email", "email:locmem", "USD")
    assert (usage.provider_cost, usage.markup_percent, usage.billable_amount) == (
        Decimal("0.0001"),
        Decimal("50.00"),
        Decimal("0.0002"),
    )


def test_sms_goes_through_twilio_and_costs_what_twilio_says(
    organization, seller, twilio, django_capture_on_commit_callbacks
):
    campaign, buyer = seller
    usage_markup_set(organization=organization, markup_percent="20")
    delivery_method_create(buyer=buyer, kind="sms", destination="98765 00001")  # the organization's region: IN
    twilio.default = (201, {"sid": "SMabc", "status": "queued", "price": "-0.00750", "price_unit": "USD"})
    sale = sell(organization, campaign, django_capture_on_commit_callbacks, first_name="Neel", last_name="Shah")

    [request] = twilio.requests
    assert request["path"] == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    expected_auth = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert request["headers"]["authorization"] == f"Basic {expected_auth}"
    form = twilio.form()
    assert (form["To"], form["From"]) == ("+919876500001", "+15005550006")
    assert "Neel Shah" in form["Body"] and campaign.name in form["Body"]
    delivery = SaleDelivery.objects.unscoped().get(sale=sale)
    assert (delivery.status, delivery.provider, delivery.provider_message_id) == ("sent", "twilio", "SMabc")
    usage = UsageRecord.objects.unscoped().get(source_key=f"sale-delivery:{delivery.pk}")
    assert (usage.provider_cost, usage.cost_is_estimate, usage.billable_amount) == (
        Decimal("0.0075"),
        False,
        Decimal("0.0090"),
    )


def test_whatsapp_uses_the_approved_template_when_there_is_one(
    organization, seller, twilio, settings, django_capture_on_commit_callbacks
):
    campaign, buyer = seller
    settings.TWILIO_WHATSAPP_CONTENT_SID = "HXb5b62575e6e4ff6129ad7c8efe1f983e"
    delivery_method_create(buyer=buyer, kind="whatsapp", destination="+919876500002")
    sale = sell(organization, campaign, django_capture_on_commit_callbacks, first_name="Ila", last_name="Sen")
    form = twilio.form()
    assert (form["To"], form["From"]) == ("whatsapp:+919876500002", "whatsapp:+14155238886")
    assert form["ContentSid"] == "HXb5b62575e6e4ff6129ad7c8efe1f983e" and "Body" not in form
    assert '"1": "Ila Sen"' in form["ContentVariables"]
    usage = UsageRecord.objects.unscoped().get()
    assert (usage.channel, usage.provider_cost, usage.cost_is_estimate) == ("whatsapp", Decimal("0.0050"), True)
    assert SaleDelivery.objects.unscoped().get(sale=sale).status == "sent"


def test_twilio_failures_are_retried_or_given_up(organization, seller, twilio, django_capture_on_commit_callbacks):
    campaign, buyer = seller
    delivery_method_create(buyer=buyer, kind="sms", destination="+919876500003")
    twilio.answers = [(500, {"code": 20500, "message": "Internal Server Error", "status": 500})]
    sale = sell(organization, campaign, django_capture_on_commit_callbacks)
    delivery = SaleDelivery.objects.unscoped().get(sale=sale)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "500" in delivery.last_error and delivery.next_attempt_at > timezone.now() + timedelta(seconds=20)

    SaleDelivery.objects.unscoped().filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert sale_deliveries_sweep()["due"] == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert UsageRecord.objects.unscoped().count() == 1

    # A refusal another try cannot fix (an invalid number) is not retried.
    twilio.answers = [(400, {"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400})]
    other = sell(organization, campaign, django_capture_on_commit_callbacks)
    refused = SaleDelivery.objects.unscoped().get(sale=other)
    assert (refused.status, refused.next_attempt_at) == ("failed", None)
    assert "not a valid phone number" in refused.last_error


def test_without_credentials_messages_are_logged_not_sent(
    organization, seller, settings, caplog, django_capture_on_commit_callbacks
):
    campaign, buyer = seller
    settings.TWILIO_ACCOUNT_SID = settings.TWILIO_AUTH_TOKEN = ""
    delivery_method_create(buyer=buyer, kind="sms", destination="+919876500004")
    with caplog.at_level("INFO", logger="messaging.outbox"):
        sale = sell(organization, campaign, django_capture_on_commit_callbacks)
    delivery = SaleDelivery.objects.unscoped().get(sale=sale)
    assert delivery.status == "sent" and delivery.provider == "log"
    assert any("+919876500004" in record.getMessage() for record in caplog.records)
    assert UsageRecord.objects.unscoped().get().cost_is_estimate


def test_the_sweep_delivers_sales_whose_task_was_lost(organization, seller, django_capture_on_commit_callbacks):
    campaign, buyer = seller
    delivery_method_create(buyer=buyer, kind="email", destination="late@buyer.example")
    lead = LeadFactory(organization=organization, custom={"age": 70})
    outcome = lead_distribute(lead=lead, campaign=campaign)  # committed callbacks never run: the task is "lost"
    sale = LeadSale.objects.unscoped().get(pk=outcome.sales[0].sale_id)
    assert sale.deliveries_planned_at is None and not mail.outbox
    LeadSale.objects.unscoped().filter(pk=sale.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert sale_deliveries_sweep()["planned"] == 1
    assert [m.to for m in mail.outbox] == [["late@buyer.example"]]
    with django_capture_on_commit_callbacks(execute=True):
        assert sale_deliveries_sweep() == {"planned": 0, "due": 0}
    assert len(mail.outbox) == 1


def test_the_delivery_task_handles_its_lead_delivered_events_itself(
    organization, seller, monkeypatch, django_capture_on_commit_callbacks
):
    """The task that plans a burst of sales announces each as ``lead.delivered`` and handles those events as they
    commit (the buyer's portal users are told), with no second task queued for them."""
    from campaigns import tasks
    from campaigns.models import BuyerPortalUser
    from leads import tasks as lead_tasks
    from leads.models import OutboxEvent
    from messaging.models import Notification
    from tests.factories import UserFactory

    campaign, buyer = seller
    portal_user = UserFactory()
    BuyerPortalUser.objects.unscoped().create(organization=organization, buyer=buyer, user=portal_user)
    lead = LeadFactory(organization=organization, first_name="Ravi", last_name="Menon")
    lead_distribute(lead=lead, campaign=campaign)  # the wake-up's task is not run: called below as a worker would
    queued = []
    monkeypatch.setattr(lead_tasks.handle_outbox_events, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.deliver_pending_sales(organization.pk)
    assert LeadSale.objects.unscoped().get(lead=lead).deliveries_planned_at is not None
    event = OutboxEvent.objects.unscoped().get(organization=organization, topic="lead.delivered")
    assert event.handled_at is not None and queued == []
    assert Notification.objects.unscoped().filter(user=portal_user, title__contains="Ravi Menon").exists()


def test_sales_in_a_stream_are_planned_together_and_a_lone_sale_at_once(organization, seller, monkeypatch):
    """A sale after a quiet spell queues its task at once; one within the cool-down after a task ended queues it to
    start when the cool-down does, and sales meanwhile queue nothing (they are planned by that task)."""
    from campaigns import tasks
    from campaigns.services import deliveries
    from leadflow.redis import redis_client

    client = redis_client()
    client.delete(deliveries._wake_up_flag(organization.pk), deliveries._planned_flag(organization.pk))
    queued = []
    monkeypatch.setattr(tasks.deliver_pending_sales, "delay", lambda org: queued.append((org, 0)))
    monkeypatch.setattr(
        tasks.deliver_pending_sales, "apply_async", lambda args, countdown: queued.append((*args, countdown))
    )
    deliveries._wake_up(organization.pk)
    assert queued == [(organization.pk, 0)]  # at once
    deliveries.sales_deliver_pending(organization_id=organization.pk)  # the task: clears the flag, then cools down
    deliveries._wake_up(organization.pk)
    deliveries._wake_up(organization.pk)
    assert len(queued) == 2
    [(org, countdown)] = queued[1:]
    assert org == organization.pk and 0 < countdown <= deliveries.PLAN_COOL_DOWN_S
