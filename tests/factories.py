"""Factories for every model. Tenant-owned rows are created through ``unscoped()`` so a factory never needs a
scope; pass ``organization=`` to put a row in a given tenant.

``TENANT_FACTORIES`` maps each tenant-owned model to its factory: the tenancy walk uses it to create another
organization's rows for every API route, and fails when a model has no factory.
"""

from __future__ import annotations

from decimal import Decimal

import factory
from django.utils import timezone

from accounts.constants import Role
from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from billing.models import Invoice, InvoiceLine, Plan, PlanPrice, Subscription, WalletTopUp
from campaigns.models import (
    Buyer,
    BuyerSubscription,
    Campaign,
    Category,
    LeadDistribution,
    Supplier,
    WalletEntry,
)
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from integrations.services.webhooks import webhook_secret_generate
from leads.models import (
    AssignmentRule,
    InboundSubmission,
    Lead,
    LeadActivity,
    LeadImport,
    LeadNote,
    PipelineStage,
    ScoringRule,
)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class):
        manager = model_class._default_manager
        return manager.unscoped() if hasattr(manager, "unscoped") else manager


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Acme {n}")
    slug = factory.Sequence(lambda n: f"acme-{n}")
    country = "IN"
    timezone = "Asia/Kolkata"
    currency = "INR"
    default_phone_region = "IN"


class MembershipFactory(TenantFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class InvitationFactory(TenantFactory):
    class Meta:
        model = Invitation

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.AGENT
    token = factory.Sequence(lambda n: f"invitation-token-{n}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=7))


class ApiKeyFactory(TenantFactory):
    """Build keys with :func:`make_api_key` when the raw key is needed."""

    class Meta:
        model = ApiKey

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Key {n}")
    lookup_id = factory.Sequence(lambda n: f"{n:08x}")
    key_hash = factory.LazyAttribute(lambda o: ApiKey.hash_key(f"lf_{o.lookup_id}_secret"))
    scopes = factory.LazyFunction(lambda: ["read", "write", "ingest"])


class AuditEventFactory(TenantFactory):
    class Meta:
        model = AuditEvent

    organization = factory.SubFactory(OrganizationFactory)
    action = "organization.updated"


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")
    monthly_lead_quota = 1000
    seats = 3


class PlanPriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlanPrice

    plan = factory.SubFactory(PlanFactory)
    currency = "INR"
    interval = "monthly"
    amount = "999.00"


class SubscriptionFactory(TenantFactory):
    class Meta:
        model = Subscription

    organization = factory.SubFactory(OrganizationFactory)
    plan = factory.SubFactory(PlanFactory)
    currency = "INR"
    trial_ends_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=14))


def _first_stage(organization):
    from leads.services.stages import stages_ensure_default

    return stages_ensure_default(organization=organization)[0]


class PipelineStageFactory(TenantFactory):
    class Meta:
        model = PipelineStage

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Stage {n}")
    position = factory.Sequence(lambda n: 10 + n)


class LeadFactory(TenantFactory):
    class Meta:
        model = Lead

    organization = factory.SubFactory(OrganizationFactory)
    stage = factory.LazyAttribute(lambda o: _first_stage(o.organization))
    source = "api"
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    full_name = factory.LazyAttribute(lambda o: f"{o.first_name} {o.last_name}")
    email = factory.Sequence(lambda n: f"lead{n}@example.com")
    phone = factory.Sequence(lambda n: f"+9198{n:08d}")
    tags = factory.Sequence(lambda n: [f"tag-{n}"])


class InboundSubmissionFactory(TenantFactory):
    class Meta:
        model = InboundSubmission

    organization = factory.SubFactory(OrganizationFactory)
    source = "api"
    raw_body = '{"email": "stored@example.com"}'
    content_type = "application/json"
    status = "failed"


class LeadActivityFactory(TenantFactory):
    class Meta:
        model = LeadActivity

    organization = factory.SubFactory(OrganizationFactory)
    lead = factory.SubFactory(LeadFactory, organization=factory.SelfAttribute("..organization"))
    kind = "note"
    message = "Called, no answer"


class LeadNoteFactory(TenantFactory):
    class Meta:
        model = LeadNote

    organization = factory.SubFactory(OrganizationFactory)
    lead = factory.SubFactory(LeadFactory, organization=factory.SelfAttribute("..organization"))
    body = "Wants a call after 6 pm"


class ScoringRuleFactory(TenantFactory):
    class Meta:
        model = ScoringRule

    organization = factory.SubFactory(OrganizationFactory)
    label = "Big budget"
    field = "custom.budget"
    operator = "gte"
    value = "50000"
    points = 20


class AssignmentRuleFactory(TenantFactory):
    class Meta:
        model = AssignmentRule

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Rule {n}")
    source = "facebook"


class LeadImportFactory(TenantFactory):
    class Meta:
        model = LeadImport

    organization = factory.SubFactory(OrganizationFactory)
    filename = "leads.csv"
    content = b"name,email\nAsha,asha@example.com\n"
    headers = factory.LazyFunction(lambda: ["name", "email"])
    mapping = factory.LazyFunction(lambda: {"name": "full_name", "email": "email"})
    total_rows = 1


class WebhookEndpointFactory(TenantFactory):
    class Meta:
        model = WebhookEndpoint

    organization = factory.SubFactory(OrganizationFactory)
    url = factory.Sequence(lambda n: f"https://hooks{n}.example.com/leadflow")
    events = factory.LazyFunction(lambda: ["lead.created"])
    secret = factory.LazyFunction(webhook_secret_generate)


class WebhookMessageFactory(TenantFactory):
    class Meta:
        model = WebhookMessage

    organization = factory.SubFactory(OrganizationFactory)
    message_id = factory.Sequence(lambda n: f"msg_factory{n}")
    event_type = "lead.created"
    payload = factory.LazyFunction(
        lambda: {"type": "lead.created", "timestamp": "2026-01-01T00:00:00+00:00", "data": {}}
    )


class WebhookDeliveryFactory(TenantFactory):
    class Meta:
        model = WebhookDelivery

    organization = factory.SubFactory(OrganizationFactory)
    endpoint = factory.SubFactory(WebhookEndpointFactory, organization=factory.SelfAttribute("..organization"))
    message = factory.SubFactory(WebhookMessageFactory, organization=factory.SelfAttribute("..organization"))
    status = "failed"
    attempt_count = 1


class WebhookAttemptFactory(TenantFactory):
    class Meta:
        model = WebhookAttempt

    organization = factory.SubFactory(OrganizationFactory)
    delivery = factory.SubFactory(WebhookDeliveryFactory, organization=factory.SelfAttribute("..organization"))
    number = 1
    status_code = 500


TENANT_FACTORIES = {
    Membership: MembershipFactory,
    Invitation: InvitationFactory,
    ApiKey: ApiKeyFactory,
    AuditEvent: AuditEventFactory,
    Subscription: SubscriptionFactory,
    PipelineStage: PipelineStageFactory,
    Lead: LeadFactory,
    InboundSubmission: InboundSubmissionFactory,
    LeadActivity: LeadActivityFactory,
    LeadNote: LeadNoteFactory,
    ScoringRule: ScoringRuleFactory,
    AssignmentRule: AssignmentRuleFactory,
    LeadImport: LeadImportFactory,
    WebhookEndpoint: WebhookEndpointFactory,
    WebhookMessage: WebhookMessageFactory,
    WebhookDelivery: WebhookDeliveryFactory,
    WebhookAttempt: WebhookAttemptFactory,
}


def make_api_key(organization: Organization, scopes=("read", "write", "ingest"), **kwargs) -> tuple[ApiKey, str]:
    """A real key through the service, returned with its raw value."""
    from accounts.services import api_key_create

    return api_key_create(organization=organization, name=kwargs.pop("name", "Test key"), scopes=list(scopes), **kwargs)


# Campaigns -----------------------------------------------------------------------------------------------------------


class CategoryFactory(TenantFactory):
    class Meta:
        model = Category

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Vertical {n}")
    slug = factory.Sequence(lambda n: f"vertical-{n}")
    fields = factory.LazyFunction(
        lambda: [
            {"name": "age", "label": "Age", "type": "number", "required": True},
            {"name": "coverage", "label": "Coverage", "type": "choice", "choices": ["basic", "full"]},
        ]
    )


class CampaignFactory(TenantFactory):
    class Meta:
        model = Campaign

    organization = factory.SubFactory(OrganizationFactory)
    category = factory.SubFactory(CategoryFactory, organization=factory.SelfAttribute("..organization"))
    name = factory.Sequence(lambda n: f"Campaign {n}")
    price_per_lead = Decimal("10.00")
    distribution_logic = "round_robin"


class BuyerFactory(TenantFactory):
    class Meta:
        model = Buyer

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Buyer {n}")
    company = factory.Sequence(lambda n: f"Buyer Co {n}")
    email = factory.Sequence(lambda n: f"buyer{n}@example.com")
    timezone = "Etc/UTC"  # a choice the model accepts (full_clean), same clock as UTC


class BuyerSubscriptionFactory(TenantFactory):
    class Meta:
        model = BuyerSubscription

    organization = factory.SubFactory(OrganizationFactory)
    buyer = factory.SubFactory(BuyerFactory, organization=factory.SelfAttribute("..organization"))
    campaign = factory.SubFactory(CampaignFactory, organization=factory.SelfAttribute("..organization"))


class SupplierFactory(TenantFactory):
    class Meta:
        model = Supplier
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Supplier {n}")
    email = factory.Sequence(lambda n: f"supplier{n}@example.com")
    payout_per_lead = Decimal("4.00")

    @factory.post_generation
    def campaigns(obj, create, extracted, **kwargs):
        if create and extracted:
            from leadflow.tenancy.context import organization_scope

            # The relation's manager is the campaigns' scoped one.
            with organization_scope(obj.organization):
                obj.campaigns.set(extracted)


class WalletEntryFactory(TenantFactory):
    """A bare ledger row for listing tests; real money moves through ``campaigns.services.wallets``."""

    class Meta:
        model = WalletEntry

    organization = factory.SubFactory(OrganizationFactory)
    buyer = factory.SubFactory(BuyerFactory, organization=factory.SelfAttribute("..organization"))
    kind = "credit"
    amount = Decimal("100.00")
    balance_after = Decimal("100.00")


class LeadDistributionFactory(TenantFactory):
    class Meta:
        model = LeadDistribution

    organization = factory.SubFactory(OrganizationFactory)
    lead = factory.SubFactory(LeadFactory, organization=factory.SelfAttribute("..organization"))
    campaign = factory.SubFactory(CampaignFactory, organization=factory.SelfAttribute("..organization"))
    status = "unsold"
    strategy = "round_robin"


TENANT_FACTORIES.update(
    {
        Category: CategoryFactory,
        Campaign: CampaignFactory,
        Buyer: BuyerFactory,
        BuyerSubscription: BuyerSubscriptionFactory,
        Supplier: SupplierFactory,
        WalletEntry: WalletEntryFactory,
        LeadDistribution: LeadDistributionFactory,
    }
)


# Inbound integrations ------------------------------------------------------------------------------------------------

from integrations.models import IntegrationConnection  # noqa: E402 - kept with its factory, this section is ours


class IntegrationConnectionFactory(TenantFactory):
    class Meta:
        model = IntegrationConnection

    organization = factory.SubFactory(OrganizationFactory)
    provider = "webhook"
    name = factory.Sequence(lambda n: f"Zap {n}")
    public_token = factory.Faker("uuid4")
    credentials = factory.LazyFunction(dict)
    settings = factory.LazyFunction(dict)


TENANT_FACTORIES[IntegrationConnection] = IntegrationConnectionFactory


from integrations.models import ConversionEvent  # noqa: E402 - kept with its factory


class ConversionEventFactory(TenantFactory):
    class Meta:
        model = ConversionEvent

    organization = factory.SubFactory(OrganizationFactory)
    connection = factory.SubFactory(
        IntegrationConnectionFactory, organization=factory.SelfAttribute("..organization"), provider="facebook"
    )
    leadgen_id = factory.Sequence(lambda n: f"90071992547409{n:05d}")
    event_name = "Qualified"
    event_time = factory.LazyFunction(timezone.now)
    idempotency_key = factory.Sequence(lambda n: f"factory:{n}")
    status = "failed"


TENANT_FACTORIES[ConversionEvent] = ConversionEventFactory


# Billing -------------------------------------------------------------------------------------------------------------


class InvoiceFactory(TenantFactory):
    """A bare paid invoice with one line; real invoices are numbered by ``billing.invoices.invoice_create``."""

    class Meta:
        model = Invoice
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    sequence = factory.Sequence(lambda n: n + 1)
    number = factory.LazyAttribute(lambda o: f"TEST-{o.sequence:05d}")
    status = "paid"
    currency = "INR"
    subtotal = Decimal("1000.00")
    tax_total = Decimal("180.00")
    total = Decimal("1180.00")
    tax_kind = "gst"
    tax_rate = Decimal("18")
    sac_code = "998314"
    customer_name = factory.LazyAttribute(lambda o: o.organization.name)
    customer_country = "IN"
    provider = "offline"
    paid_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def lines(obj, create, extracted, **kwargs):
        if create:
            InvoiceLine.objects.unscoped().create(
                organization=obj.organization,
                invoice=obj,
                kind="subscription",
                description="Growth plan",
                quantity=Decimal("1"),
                unit_amount=obj.subtotal,
                amount=obj.subtotal,
            )


class WalletTopUpFactory(TenantFactory):
    class Meta:
        model = WalletTopUp

    organization = factory.SubFactory(OrganizationFactory)
    buyer = factory.SubFactory(BuyerFactory, organization=factory.SelfAttribute("..organization"))
    amount = Decimal("500.00")
    currency = "INR"
    provider = "offline"
    provider_reference = factory.Sequence(lambda n: f"offline_factory{n}")


TENANT_FACTORIES.update({Invoice: InvoiceFactory, WalletTopUp: WalletTopUpFactory})
# Campaigns: deliveries, returns, the buyer portal and usage -------------------------------------------------------------

from campaigns.models import (  # noqa: E402 - kept with their factories
    BuyerInvite,
    BuyerPortalUser,
    CampaignSubmission,
    DeliveryMethod,
    LeadReturn,
    LeadSale,
    SaleDelivery,
)
from messaging.models import UsageRecord  # noqa: E402


class LeadSaleFactory(TenantFactory):
    """A bare sale row for listing tests; real sales come from ``lead_distribute``."""

    class Meta:
        model = LeadSale

    organization = factory.SubFactory(OrganizationFactory)
    distribution = factory.SubFactory(
        LeadDistributionFactory, organization=factory.SelfAttribute("..organization"), status="sold"
    )
    lead = factory.SelfAttribute("distribution.lead")
    campaign = factory.SelfAttribute("distribution.campaign")
    buyer = factory.SubFactory(BuyerFactory, organization=factory.SelfAttribute("..organization"))
    price = Decimal("10.00")


class DeliveryMethodFactory(TenantFactory):
    class Meta:
        model = DeliveryMethod

    organization = factory.SubFactory(OrganizationFactory)
    buyer = factory.SubFactory(BuyerFactory, organization=factory.SelfAttribute("..organization"))
    kind = "email"
    destination = factory.Sequence(lambda n: f"leads{n}@buyer.example")


class SaleDeliveryFactory(TenantFactory):
    class Meta:
        model = SaleDelivery

    organization = factory.SubFactory(OrganizationFactory)
    sale = factory.SubFactory(LeadSaleFactory, organization=factory.SelfAttribute("..organization"))
    method = factory.SubFactory(
        DeliveryMethodFactory,
        organization=factory.SelfAttribute("..organization"),
        buyer=factory.SelfAttribute("..sale.buyer"),
    )
    kind = "email"
    status = "failed"
    attempts = 7


class LeadReturnFactory(TenantFactory):
    class Meta:
        model = LeadReturn

    organization = factory.SubFactory(OrganizationFactory)
    sale = factory.SubFactory(LeadSaleFactory, organization=factory.SelfAttribute("..organization"))
    buyer = factory.SelfAttribute("sale.buyer")
    campaign = factory.SelfAttribute("sale.campaign")
    lead = factory.SelfAttribute("sale.lead")
    reason = "wrong_number"


class BuyerInviteFactory(TenantFactory):
    class Meta:
        model = BuyerInvite

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"INVITE{n:06d}")


class BuyerPortalUserFactory(TenantFactory):
    class Meta:
        model = BuyerPortalUser

    organization = factory.SubFactory(OrganizationFactory)
    buyer = factory.SubFactory(BuyerFactory, organization=factory.SelfAttribute("..organization"))
    user = factory.SubFactory(UserFactory)


class CampaignSubmissionFactory(TenantFactory):
    class Meta:
        model = CampaignSubmission

    organization = factory.SubFactory(OrganizationFactory)
    submission = factory.SubFactory(InboundSubmissionFactory, organization=factory.SelfAttribute("..organization"))
    campaign = factory.SubFactory(CampaignFactory, organization=factory.SelfAttribute("..organization"))
    outcome = "rejected"


class UsageRecordFactory(TenantFactory):
    class Meta:
        model = UsageRecord

    organization = factory.SubFactory(OrganizationFactory)
    channel = "sms"
    provider = "log"
    provider_cost = Decimal("0.0079")
    currency = "USD"
    markup_percent = Decimal("20")
    billable_amount = Decimal("0.0095")
    source_key = factory.Sequence(lambda n: f"factory:{n}")


TENANT_FACTORIES.update(
    {
        LeadSale: LeadSaleFactory,
        DeliveryMethod: DeliveryMethodFactory,
        SaleDelivery: SaleDeliveryFactory,
        LeadReturn: LeadReturnFactory,
        BuyerInvite: BuyerInviteFactory,
        BuyerPortalUser: BuyerPortalUserFactory,
        CampaignSubmission: CampaignSubmissionFactory,
        UsageRecord: UsageRecordFactory,
    }
)


# Support tickets -----------------------------------------------------------------------------------------------------

from support.models import SupportTicket, TicketMessage  # noqa: E402 - kept with its factories


class SupportTicketFactory(TenantFactory):
    class Meta:
        model = SupportTicket

    organization = factory.SubFactory(OrganizationFactory)
    subject = factory.Sequence(lambda n: f"Leads stopped arriving {n}")
    opened_by = factory.SubFactory(UserFactory)


class TicketMessageFactory(TenantFactory):
    class Meta:
        model = TicketMessage

    organization = factory.SubFactory(OrganizationFactory)
    ticket = factory.SubFactory(SupportTicketFactory, organization=factory.SelfAttribute("..organization"))
    author = factory.SelfAttribute("ticket.opened_by")
    body = "Since this morning nothing arrives from Facebook."


TENANT_FACTORIES.update({SupportTicket: SupportTicketFactory, TicketMessage: TicketMessageFactory})
# Messaging ------------------------------------------------------------------------------------------------------------
from messaging.models import (  # noqa: E402 - grouped with the factories that use them
    AutomationExecution,
    AutomationRule,
    Conversation,
    Message,
    MessageTemplate,
    OptOut,
    TemplateVariant,
)


class ConversationFactory(TenantFactory):
    class Meta:
        model = Conversation

    organization = factory.SubFactory(OrganizationFactory)
    channel = "sms"
    address = factory.Sequence(lambda n: f"+1415555{n:04d}")
    contact_name = factory.Sequence(lambda n: f"Contact {n}")
    last_message_at = factory.LazyFunction(timezone.now)


class MessageFactory(TenantFactory):
    class Meta:
        model = Message

    organization = factory.SubFactory(OrganizationFactory)
    conversation = factory.SubFactory(ConversationFactory, organization=factory.SelfAttribute("..organization"))
    channel = "sms"
    direction = "in"
    to_address = "+15005550006"
    from_address = factory.SelfAttribute("conversation.address")
    body = "Hello"
    status = "received"


class MessageTemplateFactory(TenantFactory):
    class Meta:
        model = MessageTemplate

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"template-{n}")
    channel = "sms"
    body = "Hi {{first_name}}"


class TemplateVariantFactory(TenantFactory):
    class Meta:
        model = TemplateVariant

    organization = factory.SubFactory(OrganizationFactory)
    template = factory.SubFactory(MessageTemplateFactory, organization=factory.SelfAttribute("..organization"))
    label = factory.Sequence(lambda n: f"B{n}")
    body = "Hello {{first_name}}"


class AutomationRuleFactory(TenantFactory):
    class Meta:
        model = AutomationRule

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Rule {n}")
    trigger = "lead_created"


class AutomationExecutionFactory(TenantFactory):
    class Meta:
        model = AutomationExecution

    organization = factory.SubFactory(OrganizationFactory)
    rule = factory.SubFactory(AutomationRuleFactory, organization=factory.SelfAttribute("..organization"))
    lead = factory.SubFactory(LeadFactory, organization=factory.SelfAttribute("..organization"))
    trigger_key = factory.Sequence(lambda n: f"created:{n}")


class OptOutFactory(TenantFactory):
    class Meta:
        model = OptOut

    organization = factory.SubFactory(OrganizationFactory)
    address = factory.Sequence(lambda n: f"+1415666{n:04d}")
    channel = "sms"
    method = "keyword"
    keyword = "STOP"


TENANT_FACTORIES.update(
    {
        Conversation: ConversationFactory,
        Message: MessageFactory,
        MessageTemplate: MessageTemplateFactory,
        TemplateVariant: TemplateVariantFactory,
        AutomationRule: AutomationRuleFactory,
        AutomationExecution: AutomationExecutionFactory,
        OptOut: OptOutFactory,
    }
)
