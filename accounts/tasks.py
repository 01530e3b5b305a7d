"""Celery tasks of the accounts app: thin wrappers that load rows and call a service."""

from celery import shared_task

from . import emails, services
from .models import Invitation, Organization, User


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_welcome_email(user_id: int, organization_id: int) -> None:
    user = User.objects.filter(pk=user_id).first()
    organization = Organization.objects.filter(pk=organization_id).first()
    if user and organization:
        emails.welcome_email_send(user=user, organization=organization)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invitation_email(invitation_id: int) -> None:
    invitation = Invitation.objects.unscoped().select_related("organization").filter(pk=invitation_id).first()
    if invitation and invitation.is_open:
        emails.invitation_email_send(invitation=invitation)


@shared_task
def purge_expired_invitations() -> int:
    return services.invitations_purge_expired()
