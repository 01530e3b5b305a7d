"""Notifications for the team: in-app (a row and a live bell), email, SMS and WhatsApp, as each member prefers.

``notify`` is the one entry point every app uses. A ``dedupe_key`` makes a notice once per user (a retried task,
an SLA escalation, a day's digest). Email, SMS and WhatsApp go out after commit; SMS and WhatsApp through the
messaging sender (metered, and honoring opt-outs like every send), to the phone in the member's profile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.constants import Role
from accounts.models import Membership, User
from leadflow.realtime import publish_to_user

from ..constants import (
    DEFAULT_NOTIFICATION_CHANNELS,
    MessageChannel,
    MessagePurpose,
    NotificationChannel,
    NotificationEvent,
)
from ..models import Notification, NotificationPreference, NotificationProfile

logger = logging.getLogger(__name__)

NOTIFICATION_EVENT = "notification.created"


def preferences_of(*, organization_id: int, user_ids: Iterable[int]) -> dict[tuple[int, str, str], bool]:
    rows = NotificationPreference.objects.unscoped().filter(organization_id=organization_id, user_id__in=list(user_ids))
    return {(row.user_id, row.event, row.channel): row.enabled for row in rows}


def wants(preferences: dict, *, user_id: int, event: str, channel: str) -> bool:
    explicit = preferences.get((user_id, event, channel))
    if explicit is not None:
        return explicit
    return channel in DEFAULT_NOTIFICATION_CHANNELS.get(event, set())


def unread_count(*, organization_id: int, user_id: int) -> int:
    return (
        Notification.objects.unscoped()
        .filter(organization_id=organization_id, user_id=user_id, read_at__isnull=True)
        .count()
    )


def notify(
    *,
    organization,
    users: Iterable[User],
    event: str,
    title: str,
    body: str = "",
    url: str = "",
    data: dict[str, Any] | None = None,
    dedupe_key: str = "",
    email_subject: str = "",
    email_body: str = "",
    channels: Iterable[str] | None = None,
) -> dict[str, int]:
    """Tell ``users`` about ``event`` on the channels each wants (limited to ``channels`` when the caller sends one
    of them itself, e.g. an app's own email); returns how many went out per channel."""
    allowed = set(channels) if channels is not None else set(NotificationChannel.values)
    users = [user for user in dict.fromkeys(users) if user is not None and user.is_active]
    sent = dict.fromkeys(NotificationChannel.values, 0)
    if not users:
        return sent
    preferences = preferences_of(organization_id=organization.pk, user_ids=[u.pk for u in users])
    original_wants = wants

    def wants_here(preferences, *, user_id, event, channel):
        return channel in allowed and original_wants(preferences, user_id=user_id, event=event, channel=channel)

    _notify_users(
        organization,
        users,
        preferences,
        wants_here,
        sent,
        event=event,
        title=title,
        body=body,
        url=url,
        data=data,
        dedupe_key=dedupe_key,
        email_subject=email_subject,
        email_body=email_body,
    )
    return sent


def _notify_users(
    organization,
    users,
    preferences,
    wants,
    sent,
    *,
    event,
    title,
    body,
    url,
    data,
    dedupe_key,
    email_subject,
    email_body,
) -> None:
    with transaction.atomic():
        for user in users:
            if (
                dedupe_key
                and Notification.objects.unscoped()
                .filter(organization_id=organization.pk, user_id=user.pk, dedupe_key=dedupe_key)
                .exists()
            ):
                continue
            notification = None
            in_app = wants(preferences, user_id=user.pk, event=event, channel=NotificationChannel.IN_APP)
            if in_app or dedupe_key:
                try:
                    with transaction.atomic():
                        notification = Notification.objects.unscoped().create(
                            organization_id=organization.pk,
                            user=user,
                            event=event,
                            title=title[:200],
                            body=body,
                            url=url[:500],
                            data={**(data or {}), **({} if in_app else {"in_app": False})},
                            dedupe_key=dedupe_key[:120],
                            # Kept only to remember it was sent when the member does not want it in the app.
                            read_at=None if in_app else timezone.now(),
                        )
                except IntegrityError:
                    continue  # the same notice, made at the same moment by another worker
                if notification.read_at is None:
                    sent[NotificationChannel.IN_APP] += 1
                    publish_to_user(
                        user,
                        NOTIFICATION_EVENT,
                        {
                            "id": notification.pk,
                            "event": event,
                            "title": notification.title,
                            "url": notification.url,
                            "unread": unread_count(organization_id=organization.pk, user_id=user.pk),
                        },
                    )
            if wants(preferences, user_id=user.pk, event=event, channel=NotificationChannel.EMAIL) and user.email:
                _email_on_commit(user.email, email_subject or title, email_body or _email_text(title, body, url))
                sent[NotificationChannel.EMAIL] += 1
            for channel in (NotificationChannel.SMS, NotificationChannel.WHATSAPP):
                if wants(preferences, user_id=user.pk, event=event, channel=channel):
                    sent[channel] += _team_message(organization, user, channel, f"{title}. {body}".strip(" ."))


def users_wanting(*, organization_id: int, users: Iterable[User], event: str, channel: str) -> list[User]:
    """Those of ``users`` who want ``event`` on ``channel`` (for apps that send that channel's message themselves)."""
    users = list(users)
    preferences = preferences_of(organization_id=organization_id, user_ids=[u.pk for u in users])
    return [u for u in users if wants(preferences, user_id=u.pk, event=event, channel=channel)]


class BillingNoticeChannel:
    """``BILLING_WHATSAPP_CHANNEL``: billing's notices to owners as notifications — in the app (the bell) and by
    WhatsApp or SMS to each owner's phone as they prefer (billing emails them itself). Returns how many WhatsApp
    messages were queued."""

    name = "whatsapp"
    SKIPPED = ("invoice_paid", "checkout_welcome")

    def send(self, *, organization, recipients: list[User], notice) -> int:
        if notice.template in self.SKIPPED:
            return 0
        result = notify(
            organization=organization,
            users=recipients,
            event=NotificationEvent.PAYMENT_FAILED,
            title=notice.subject,
            url="/billing/",
            channels=[NotificationChannel.IN_APP, NotificationChannel.SMS, NotificationChannel.WHATSAPP],
        )
        if not result[NotificationChannel.WHATSAPP]:
            logger.info(
                "whatsapp channel: billing notice %r for organization %s reached no owner's phone (%d owner(s))",
                notice.subject,
                organization.pk,
                len(recipients),
            )
        return result[NotificationChannel.WHATSAPP]


def _email_text(title: str, body: str, url: str) -> str:
    link = f"\n\n{settings.SITE_URL}{url}" if url.startswith("/") else (f"\n\n{url}" if url else "")
    return f"{title}\n\n{body}{link}\n"


def _email_on_commit(address: str, subject: str, text: str) -> None:
    def send() -> None:
        try:
            send_mail(subject=f"[LeadFlow] {subject}"[:200], message=text, from_email=None, recipient_list=[address])
        except Exception:
            logger.exception("notification email to %s failed", address)

    transaction.on_commit(send)


def _team_message(organization, user: User, channel: str, text: str) -> int:
    """An SMS or WhatsApp notice to a member's phone, through the one sender; 0 when it cannot go."""
    from ..models import MessageTemplate
    from .sending import MessageRefused, message_send

    phone = (
        NotificationProfile.objects.unscoped()
        .filter(organization_id=organization.pk, user=user)
        .values_list("phone", flat=True)
        .first()
    )
    if not phone:
        return 0
    template = None
    if channel == MessageChannel.WHATSAPP:
        # Outside a conversation WhatsApp takes only approved templates: the notification template carries the text.
        template = (
            MessageTemplate.objects.unscoped()
            .filter(
                organization_id=organization.pk,
                name=settings.WHATSAPP_NOTIFICATION_TEMPLATE,
                channel=MessageChannel.WHATSAPP,
                is_active=True,
            )
            .first()
        )
        if template is None:
            logger.info(
                "no %s template in %s: WhatsApp notice not sent",
                settings.WHATSAPP_NOTIFICATION_TEMPLATE,
                organization.pk,
            )
            return 0
    try:
        message_send(
            organization=organization,
            channel=channel,
            to=phone,
            body=text[:1500],
            template=template,
            template_variables=[text[:1000]] if template is not None else None,  # its one variable: the notice
            purpose=MessagePurpose.NOTIFICATION,
        )
    except MessageRefused as refused:
        logger.info("notice to %s by %s refused: %s", user.pk, channel, refused.message)
        return 0
    return 1


def members_with_roles(organization_id: int, roles: Iterable[str]) -> list[User]:
    return [
        m.user
        for m in Membership.objects.unscoped()
        .filter(organization_id=organization_id, role__in=list(roles), user__is_active=True)
        .select_related("user")
        .order_by("pk")
    ]


def automation_recipients(lead, recipients: str) -> list[User]:
    if recipients == "owner":
        return [lead.owner] if lead.owner_id else members_with_roles(lead.organization_id, [Role.OWNER])
    if recipients == "managers":
        return members_with_roles(lead.organization_id, [Role.MANAGER, Role.ADMIN, Role.OWNER])
    return members_with_roles(lead.organization_id, [Role.ADMIN, Role.OWNER])


@transaction.atomic
def notifications_mark_read(*, organization, user, ids: list[int] | None = None) -> int:
    queryset = Notification.objects.unscoped().filter(organization_id=organization.pk, user=user, read_at__isnull=True)
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    changed = queryset.update(read_at=timezone.now())
    if changed:
        publish_to_user(
            user, "notification.read", {"unread": unread_count(organization_id=organization.pk, user_id=user.pk)}
        )
    return changed


@transaction.atomic
def preferences_set(*, organization, user, choices: dict[tuple[str, str], bool], phone: str | None = None) -> None:
    """Save a member's choices (event, channel) → on/off, and the phone their SMS/WhatsApp notices go to."""
    from leadflow.exceptions import ServiceError
    from leads.intake.normalize import NormalizationError, normalize_phone

    for (event, channel), enabled in choices.items():
        NotificationPreference.objects.unscoped().update_or_create(
            organization_id=organization.pk, user=user, event=event, channel=channel, defaults={"enabled": enabled}
        )
    if phone is not None:
        try:
            phone = normalize_phone(phone, region=organization.default_phone_region) if phone.strip() else ""
        except NormalizationError as error:
            raise ServiceError(str(error), field="phone") from None
        NotificationProfile.objects.unscoped().update_or_create(
            organization_id=organization.pk, user=user, defaults={"phone": phone}
        )


def _owners_and_admins(organization_id: int, roles=(Role.OWNER, Role.ADMIN)) -> list[User]:
    return members_with_roles(organization_id, roles)


def low_wallet_notify(*, buyer, title: str, url: str) -> list[str]:
    """A buyer's wallet fell below its threshold: notify the owners and admins; returns the addresses that want
    campaigns' own email about it."""
    admins = _owners_and_admins(buyer.organization_id)
    notify(
        organization=buyer.organization,
        users=admins,
        event=NotificationEvent.LOW_WALLET,
        title=title,
        body="When it cannot pay for a lead, the buyer stops receiving leads until it is topped up.",
        url=url,
        data={"buyer_id": buyer.pk},
        channels=[NotificationChannel.IN_APP, NotificationChannel.SMS, NotificationChannel.WHATSAPP],
    )
    wanted = users_wanting(
        organization_id=buyer.organization_id, users=admins, event=NotificationEvent.LOW_WALLET, channel="email"
    )
    return [user.email for user in wanted]


def integration_error_notify(*, connection, url: str) -> list[str]:
    """A connection turned to error: notify the owners; returns the addresses that want the integration email."""
    owners = _owners_and_admins(connection.organization_id, roles=(Role.OWNER,))
    notify(
        organization=connection.organization,
        users=owners,
        event=NotificationEvent.INTEGRATION_ERROR,
        title=f"Integration needs attention: {connection.name}",
        body=connection.last_error[:300],
        url=url,
        data={"connection_id": connection.pk},
        channels=[NotificationChannel.IN_APP, NotificationChannel.SMS, NotificationChannel.WHATSAPP],
    )
    wanted = users_wanting(
        organization_id=connection.organization_id,
        users=owners,
        event=NotificationEvent.INTEGRATION_ERROR,
        channel="email",
    )
    return [user.email for user in wanted]
