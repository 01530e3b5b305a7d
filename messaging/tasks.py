"""Celery tasks of the messaging app: thin wrappers over the services."""

from __future__ import annotations

from celery import shared_task

# A status that beat its message's send record is tried again after these waits, then left for the sweep.
STATUS_RETRY_DELAYS = (1, 5, 30)


@shared_task(acks_late=True)
def deliver_message(message_id: int) -> str | None:
    from .services.sending import message_deliver

    return message_deliver(message_id=message_id)


@shared_task(acks_late=True)
def send_due_messages() -> int:
    from .services.sending import messages_send_due

    return messages_send_due()


@shared_task(acks_late=True)
def process_provider_event(event_id: int, attempt: int = 0) -> str:
    from .services.inbound import provider_event_process
    from .services.sending import MessageNotFound

    try:
        return provider_event_process(event_id=event_id)
    except MessageNotFound:
        if attempt < len(STATUS_RETRY_DELAYS):
            process_provider_event.apply_async((event_id, attempt + 1), countdown=STATUS_RETRY_DELAYS[attempt])
        return "waiting for its message"


@shared_task
def sweep_provider_events() -> int:
    from .services.inbound import provider_events_sweep

    return provider_events_sweep()


@shared_task(acks_late=True)
def resume_automation(execution_id: int) -> str | None:
    from .services.automations import execution_resume

    return execution_resume(execution_id=execution_id)


@shared_task
def resume_due_automations() -> int:
    from .services.automations import executions_resume_due

    return executions_resume_due()


@shared_task
def run_idle_triggers() -> int:
    from .services.automations import idle_triggers_run

    return idle_triggers_run()


@shared_task
def escalate_sla_breaches() -> int:
    from .services.sla import sla_escalate_breaches

    return sla_escalate_breaches()


@shared_task
def send_daily_summaries() -> int:
    from .services.digest import daily_summaries_send

    return daily_summaries_send()


@shared_task(acks_late=True)
def score_conversation_suggestion(conversation_id: int, user_id: int | None = None) -> int | None:
    from .ai.suggestions import suggestion_create

    suggestion = suggestion_create(conversation_id=conversation_id, user_id=user_id)
    return suggestion.pk if suggestion else None
