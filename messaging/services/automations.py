"""Automations: a trigger, conditions on any lead field (all or any), and steps run in order, with waits between.

Triggers come from the outbox (``lead.created``, ``lead.stage_changed``, ``message.received``, ``lead.delivered``)
and from a beat task (no reply / no activity for N hours). Each run is an ``AutomationExecution`` unique per
(rule, lead, trigger occurrence), and each step's outcome an ``AutomationStepRun`` unique per (execution, step), so a
redelivered event or a task that runs twice does nothing twice. A wait parks the execution until ``resume_at`` (a
Celery countdown for short waits, the minute sweep for the rest). Sequences stop when the lead replies (if the rule
says so), opts out, or is won or lost.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from leadflow.exceptions import ServiceError
from leadflow.tenancy.context import organization_scope
from leads.constants import RuleOperator, StageKind
from leads.models import Lead
from leads.scoring import rule_matches

from ..constants import (
    AutomationAction,
    AutomationTrigger,
    Direction,
    ExecutionStatus,
    MessageChannel,
    StepRunStatus,
)
from ..models import AutomationExecution, AutomationRule, AutomationStep, AutomationStepRun, Message

logger = logging.getLogger(__name__)

COUNTDOWN_AT_MOST = timedelta(minutes=15)
MAX_WAIT_MINUTES = 60 * 24 * 60
WELCOME_KEY = "instant_welcome"
CHANNEL_CHOICES = ("preferred", *MessageChannel.values)
RECIPIENTS = ("owner", "managers", "admins")


# Conditions ---------------------------------------------------------------------------------------------------------


def condition_value(lead: Lead, name: str) -> Any:
    if name == "stage":
        return lead.stage.name if lead.stage_id else ""
    if name == "stage_kind":
        return lead.stage.kind if lead.stage_id else ""
    if name == "owner":
        return lead.owner.email if lead.owner_id else ""
    if name == "tags":
        return ",".join(lead.tags)
    if name.startswith("custom."):
        return (lead.custom or {}).get(name[7:])
    return getattr(lead, name, None)


def condition_matches(condition: dict, lead: Lead) -> bool:
    operator = condition.get("operator", RuleOperator.EQUALS)
    value = condition_value(lead, condition.get("field", ""))
    if condition.get("field") == "tags" and operator == RuleOperator.CONTAINS:
        return str(condition.get("value", "")).strip().lower() in {t.lower() for t in lead.tags}
    rule = SimpleNamespace(field="value", operator=operator, value=str(condition.get("value", "")))
    return rule_matches(rule, SimpleNamespace(value=value))


def conditions_match(conditions: dict, lead: Lead) -> bool:
    rules = conditions.get("rules") or []
    if not rules:
        return True
    results = (condition_matches(rule, lead) for rule in rules)
    return any(results) if conditions.get("match") == "any" else all(results)


def conditions_errors(conditions: dict) -> list[str]:
    errors = []
    if conditions.get("match", "all") not in ("all", "any"):
        errors.append("Match all or any of the conditions.")
    for index, rule in enumerate(conditions.get("rules") or [], start=1):
        if not str(rule.get("field", "")).strip():
            errors.append(f"Condition {index}: name a field.")
        if rule.get("operator") not in RuleOperator.values:
            errors.append(f"Condition {index}: pick an operator.")
    return errors


# Rules and steps --------------------------------------------------------------------------------------------------


def step_config_errors(action: str, config: dict, *, organization_id: int) -> dict[str, str]:
    from leads.models import PipelineStage

    errors: dict[str, str] = {}
    if action == AutomationAction.SEND_TEMPLATE:
        if not str(config.get("template", "")).strip():
            errors["template"] = "Pick a template."
        if config.get("channel", "preferred") not in CHANNEL_CHOICES:
            errors["channel"] = "Pick a channel."
    elif action == AutomationAction.WAIT:
        minutes = config.get("minutes")
        if not isinstance(minutes, int) or not 1 <= minutes <= MAX_WAIT_MINUTES:
            errors["minutes"] = "Wait between 1 minute and 60 days."
    elif action == AutomationAction.CHANGE_STAGE:
        if (
            not PipelineStage.objects.unscoped()
            .filter(organization_id=organization_id, pk=config.get("stage_id"))
            .exists()
        ):
            errors["stage_id"] = "Pick one of your pipeline's stages."
    elif action == AutomationAction.TAG:
        if not (config.get("add") or config.get("remove")):
            errors["add"] = "Name a tag to add or remove."
    elif action == AutomationAction.NOTIFY:
        if config.get("recipients", "owner") not in RECIPIENTS:
            errors["recipients"] = "Notify the lead's owner, the managers or the admins."
        if not str(config.get("message", "")).strip():
            errors["message"] = "Write what the notification says."
    elif action == AutomationAction.WEBHOOK:
        if not str(config.get("url", "")).strip():
            errors["url"] = "Give the URL to call."
    elif action == AutomationAction.ASSIGN:
        if config.get("user_id") in (None, "") and config.get("strategy") != "auto":
            errors["user_id"] = "Pick a member, or assign automatically."
    else:
        errors["action"] = "Pick an action."
    return errors


def rule_save(
    *, organization, rule: AutomationRule | None = None, steps: list[dict], actor=None, **fields
) -> AutomationRule:
    """Create or replace a rule and its steps (``[{"action", "config"}]`` in order)."""
    with organization_scope(organization), transaction.atomic():
        return _rule_save(organization=organization, rule=rule, steps=steps, actor=actor, **fields)


def _rule_save(*, organization, rule, steps, actor, **fields) -> AutomationRule:
    from accounts.services import audit_record

    if fields.get("trigger") and fields["trigger"] not in AutomationTrigger.values:
        raise ServiceError("Pick a trigger.", field="trigger")
    trigger = fields.get("trigger") or (rule.trigger if rule else "")
    config = fields.get("trigger_config", rule.trigger_config if rule else {}) or {}
    if trigger in (AutomationTrigger.NO_REPLY, AutomationTrigger.NO_ACTIVITY):
        hours = config.get("hours")
        if not isinstance(hours, int) or not 1 <= hours <= 24 * 90:
            raise ServiceError("Say after how many hours (1 to 2160).", field="trigger_config")
    problems = conditions_errors(fields.get("conditions", rule.conditions if rule else {}) or {})
    if problems:
        raise ServiceError(problems[0], field="conditions")
    if not steps:
        raise ServiceError("Add at least one step.", field="steps")
    for index, step in enumerate(steps):
        errors = step_config_errors(step.get("action", ""), step.get("config") or {}, organization_id=organization.pk)
        if errors:
            name, message = next(iter(errors.items()))
            raise ServiceError(f"Step {index + 1}: {message}", field=f"steps[{index}].{name}")
    if rule is None:
        rule = AutomationRule(organization_id=organization.pk)
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.save()
    rule.steps.all().delete()
    made = []
    for index, step in enumerate(steps):
        config = dict(step.get("config") or {})
        if step["action"] == AutomationAction.WEBHOOK:
            config["endpoint_id"] = _webhook_endpoint(organization, config, actor=actor).pk
        made.append(
            AutomationStep(
                organization_id=organization.pk, rule=rule, position=index, action=step["action"], config=config
            )
        )
    AutomationStep.objects.unscoped().bulk_create(made)
    audit_record(
        organization=organization,
        action="automation_rule.saved",
        actor=actor,
        target=rule,
        changes={"trigger": [None, rule.trigger], "steps": [None, [s.action for s in made]]},
    )
    return rule


def _webhook_endpoint(organization, config: dict, *, actor=None):
    from integrations.constants import WebhookEndpointPurpose
    from integrations.models import WebhookEndpoint
    from integrations.services.webhooks import webhook_endpoint_create

    existing = (
        WebhookEndpoint.objects.unscoped()
        .filter(
            organization_id=organization.pk, pk=config.get("endpoint_id"), purpose=WebhookEndpointPurpose.AUTOMATION
        )
        .first()
    )
    if existing is not None and existing.url == config["url"].strip():
        return existing
    with organization_scope(organization):
        return webhook_endpoint_create(
            organization=organization,
            url=config["url"],
            events=[],
            description="Automation step",
            purpose=WebhookEndpointPurpose.AUTOMATION,
            actor=actor,
        )


def welcome_automation_install(*, organization) -> AutomationRule:
    """Every organization's "instant welcome": the welcome template on the lead's channel, at capture."""
    from .templates import default_templates_install

    with organization_scope(organization):
        default_templates_install(organization=organization)
        existing = (
            AutomationRule.objects.unscoped().filter(organization_id=organization.pk, system_key=WELCOME_KEY).first()
        )
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                return rule_save(
                    organization=organization,
                    name="Instant welcome",
                    system_key=WELCOME_KEY,
                    trigger=AutomationTrigger.LEAD_CREATED,
                    conditions={},
                    stop_on_reply=True,
                    steps=[
                        {
                            "action": AutomationAction.SEND_TEMPLATE,
                            "config": {"template": "welcome", "channel": "preferred"},
                        }
                    ],
                )
        except IntegrityError:
            return AutomationRule.objects.unscoped().get(organization_id=organization.pk, system_key=WELCOME_KEY)


# Running ------------------------------------------------------------------------------------------------------------


def _active_rules(organization_id: int, trigger: str):
    return AutomationRule.objects.unscoped().filter(organization_id=organization_id, trigger=trigger, is_active=True)


def automation_rules_exist(organization_id: int, trigger: str) -> bool:
    """Whether any active rule starts on ``trigger``: a handler with nothing else to do skips reading its leads."""
    return _active_rules(organization_id, trigger).exists()


def rules_for(organization_id: int, trigger: str) -> list[AutomationRule]:
    return list(_active_rules(organization_id, trigger).prefetch_related("steps").order_by("id"))


def automations_trigger(*, organization, trigger: str, leads: list[Lead], key: str, config_filter=None) -> int:
    """Start each matching rule for each lead (once per rule, lead and ``key``); returns how many started.

    ``key`` names the occurrence: ``created``, ``stage:<event id>``, ``message:<id>`` … A failing lead or rule is
    logged and skipped; it never fails the batch of events it came with.
    """
    with organization_scope(organization):
        return _trigger(organization, trigger, leads, key, config_filter)


def _trigger(organization, trigger: str, leads: list[Lead], key: str, config_filter) -> int:
    rules = rules_for(organization.pk, trigger)
    started = 0
    for rule in rules:
        if config_filter is not None and not config_filter(rule):
            continue
        for lead in leads:
            try:
                with transaction.atomic():
                    if not conditions_match(rule.conditions or {}, lead):
                        continue
                    execution = _execution_start(rule, lead, key=key)
                    if execution is None:
                        continue
                    started += 1
                    execution_run(execution, rule=rule, lead=lead)
            except Exception:
                logger.exception("automation %s for lead %s failed to start", rule.pk, lead.pk)
    return started


def _execution_start(rule: AutomationRule, lead: Lead, *, key: str) -> AutomationExecution | None:
    try:
        with transaction.atomic():
            return AutomationExecution.objects.unscoped().create(
                organization_id=rule.organization_id, rule=rule, lead=lead, trigger_key=key[:120]
            )
    except IntegrityError:
        return None  # this occurrence started this rule for this lead before


def _stop_reason(execution: AutomationExecution, rule: AutomationRule, lead: Lead) -> str:
    from .compliance import active_opt_out

    if lead.stage_id and lead.stage.kind == StageKind.WON:
        return "lead won"
    if lead.stage_id and lead.stage.kind == StageKind.LOST:
        return "lead lost"
    if active_opt_out(organization_id=lead.organization_id, lead=lead) is not None:
        return "opted out"
    if (
        rule.stop_on_reply
        and execution.next_step > 0
        and Message.objects.unscoped()
        .filter(
            organization_id=lead.organization_id,
            lead=lead,
            direction=Direction.INBOUND,
            created_at__gt=execution.started_at,
        )
        .exists()
    ):
        return "lead replied"
    return ""


def execution_run(
    execution: AutomationExecution, *, rule: AutomationRule | None = None, lead: Lead | None = None, now=None
) -> str:
    """Run an execution's steps from where it stands, until it ends or waits. Safe to call twice."""
    now = now or timezone.now()
    rule = rule or execution.rule
    lead = lead or Lead.objects.unscoped().select_related("stage", "organization", "owner").get(pk=execution.lead_id)
    with organization_scope(lead.organization):
        steps = sorted(rule.steps.all(), key=lambda step: step.position)
        while execution.next_step < len(steps):
            reason = _stop_reason(execution, rule, lead)
            if reason:
                return _finish(execution, ExecutionStatus.STOPPED, reason=reason, now=now)
            step = steps[execution.next_step]
            if step.action == AutomationAction.WAIT:
                if execution.resume_at is None:
                    execution.resume_at = now + timedelta(minutes=int(step.config.get("minutes", 1)))
                    execution.status = ExecutionStatus.WAITING
                    execution.save(update_fields=["resume_at", "status"])
                    _resume_later(execution)
                    return ExecutionStatus.WAITING
                if execution.resume_at > now:
                    return ExecutionStatus.WAITING
                _record(execution, step, StepRunStatus.DONE, f"Waited {step.config.get('minutes')} minutes", now=now)
                execution.resume_at = None
            else:
                status, detail, message = _run_action(step, lead, execution)
                _record(execution, step, status, detail, message=message, now=now)
            execution.next_step += 1
            execution.status = ExecutionStatus.RUNNING
            execution.save(update_fields=["next_step", "resume_at", "status"])
        return _finish(execution, ExecutionStatus.COMPLETED, now=now)


def _record(execution, step, status, detail, *, message=None, now) -> None:
    AutomationStepRun.objects.unscoped().bulk_create(
        [
            AutomationStepRun(
                organization_id=execution.organization_id,
                execution=execution,
                step=step,
                position=step.position,
                action=step.action,
                status=status,
                detail=detail[:500],
                message=message,
                ran_at=now,
            )
        ],
        ignore_conflicts=True,
    )


def _finish(execution, status, *, reason: str = "", now) -> str:
    execution.status, execution.stop_reason, execution.finished_at, execution.resume_at = status, reason, now, None
    execution.save(update_fields=["status", "stop_reason", "finished_at", "resume_at"])
    return status


def _resume_later(execution: AutomationExecution) -> None:
    delay = execution.resume_at - timezone.now()
    if delay > COUNTDOWN_AT_MOST:
        return  # the minute sweep resumes it
    from ..tasks import resume_automation

    execution_id = execution.pk
    transaction.on_commit(
        lambda: resume_automation.apply_async((execution_id,), countdown=max(0.0, delay.total_seconds()))
    )


def preferred_channel(lead: Lead, available: dict) -> str | None:
    """The channel the lead is most likely to answer on that we have a usable template for: WhatsApp if they have a
    phone, then SMS, then email. A lead that wrote to us first is answered where they wrote."""
    from .channels import messaging_settings_for
    from .sending import channel_enabled

    row = messaging_settings_for(lead.organization_id)
    last_inbound = (
        Message.objects.unscoped()
        .filter(organization_id=lead.organization_id, lead=lead, direction=Direction.INBOUND)
        .order_by("-created_at")
        .values_list("channel", flat=True)
        .first()
    )
    order = [last_inbound] if last_inbound else []
    order += [MessageChannel.WHATSAPP, MessageChannel.SMS, MessageChannel.EMAIL]
    for channel in order:
        has_address = bool(lead.email if channel == MessageChannel.EMAIL else lead.phone)
        if channel in available and has_address and channel_enabled(row, channel):
            return channel
    return None


def _run_action(step: AutomationStep, lead: Lead, execution) -> tuple[str, str, Message | None]:
    config = step.config or {}
    action = step.action
    if action == AutomationAction.SEND_TEMPLATE:
        from .sending import MessageRefused, message_send
        from .templates import templates_usable_named

        available = templates_usable_named(organization_id=lead.organization_id, name=config.get("template", ""))
        channel = config.get("channel", "preferred")
        channel = preferred_channel(lead, available) if channel == "preferred" else channel
        if channel is None or channel not in available:
            return (
                StepRunStatus.SKIPPED,
                f"No usable “{config.get('template')}” template for this lead's channels",
                None,
            )
        try:
            message = message_send(
                organization=lead.organization, channel=channel, lead=lead, template=available[channel], automated=True
            )
        except MessageRefused as refused:
            return StepRunStatus.SKIPPED, refused.message, None
        deferred = " (after quiet hours)" if message.send_after else ""
        return StepRunStatus.DONE, f"Queued “{available[channel].name}” by {channel}{deferred}", message
    if action == AutomationAction.ASSIGN:
        from accounts.models import User
        from leads.services.assignment import assign_new_lead
        from leads.services.leads import lead_assign

        if config.get("strategy") == "auto":
            membership = assign_new_lead(lead)
            return (
                (StepRunStatus.DONE, f"Assigned to {membership.user.display_name}", None)
                if membership
                else (
                    StepRunStatus.SKIPPED,
                    "Nobody could take it (manual assignment, or everyone is full)",
                    None,
                )
            )
        owner = User.objects.filter(pk=config.get("user_id")).first()
        if owner is None:
            return StepRunStatus.FAILED, "The member is gone", None
        lead_assign(lead=lead, owner=owner, actor=None, automatic=True)
        return StepRunStatus.DONE, f"Assigned to {owner.display_name}", None
    if action == AutomationAction.TAG:
        from leads.services.leads import lead_set_tags

        lead_set_tags(lead=lead, actor=None, add=config.get("add") or [], remove=config.get("remove") or [])
        return StepRunStatus.DONE, "Tags changed", None
    if action == AutomationAction.CHANGE_STAGE:
        from leads.models import PipelineStage
        from leads.services.leads import lead_change_stage

        stage = PipelineStage.objects.filter(pk=config.get("stage_id")).first()
        if stage is None:
            return StepRunStatus.FAILED, "The stage is gone", None
        lead_change_stage(lead=lead, stage=stage, actor=None)
        return StepRunStatus.DONE, f"Moved to {stage.name}", None
    if action == AutomationAction.NOTIFY:
        from .notifications import automation_recipients, notify

        users = automation_recipients(lead, config.get("recipients", "owner"))
        text = config.get("message", "")
        from .templates import render_named

        notify(
            organization=lead.organization,
            users=users,
            event="automation",
            title=render_named(text, lead)[:200],
            body=f"{execution.rule.name}: {lead.display_name}",
            url=f"/leads/{lead.pk}/",
        )
        return StepRunStatus.DONE, f"Notified {len(users)}", None
    if action == AutomationAction.WEBHOOK:
        from integrations.models import WebhookEndpoint
        from integrations.services.webhooks import deliveries_enqueue, webhook_messages_create
        from leads.services.leads import lead_summary

        endpoint = WebhookEndpoint.objects.unscoped().filter(pk=config.get("endpoint_id"), is_active=True).first()
        if endpoint is None:
            return StepRunStatus.FAILED, "The webhook endpoint is gone or turned off", None
        [webhook] = webhook_messages_create(
            organization=lead.organization,
            event_type="automation.step",
            items=[
                (
                    f"automation:{execution.pk}:{step.position}",
                    {"rule": {"id": execution.rule_id, "name": execution.rule.name}, "lead": lead_summary(lead)},
                    None,
                )
            ],
        )
        deliveries_enqueue(messages=[webhook], endpoints=[endpoint])
        return StepRunStatus.DONE, f"Posted to {endpoint.url}", None
    return StepRunStatus.FAILED, f"Unknown action {action}", None


def executions_resume_due(*, limit: int = 500, now: datetime | None = None) -> int:
    now = now or timezone.now()
    due = list(
        AutomationExecution.objects.unscoped()
        .filter(status=ExecutionStatus.WAITING, resume_at__lte=now)
        .order_by("resume_at")
        .values_list("pk", flat=True)[:limit]
    )
    for execution_id in due:
        execution_resume(execution_id=execution_id, now=now)
    return len(due)


def execution_resume(*, execution_id: int, now: datetime | None = None) -> str | None:
    with transaction.atomic():
        execution = (
            AutomationExecution.objects.unscoped()
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("rule")
            .filter(pk=execution_id, status=ExecutionStatus.WAITING)
            .first()
        )
        if execution is None:
            return None
        return execution_run(execution, now=now)


def executions_stop_for_lead(*, lead: Lead, reason: str, only_stop_on_reply: bool = False) -> int:
    """End the lead's running and waiting sequences (it replied, opted out, was won or lost)."""
    queryset = AutomationExecution.objects.unscoped().filter(
        organization_id=lead.organization_id,
        lead_id=lead.pk,
        status__in=[ExecutionStatus.RUNNING, ExecutionStatus.WAITING],
    )
    if only_stop_on_reply:
        queryset = queryset.filter(rule__stop_on_reply=True, next_step__gt=0)
    return queryset.update(
        status=ExecutionStatus.STOPPED, stop_reason=reason, finished_at=timezone.now(), resume_at=None
    )


def idle_triggers_run(*, now: datetime | None = None) -> int:
    """Start "no reply for N hours" and "no activity for N hours" rules for the leads that qualify now."""
    now = now or timezone.now()
    started = 0
    rules = (
        AutomationRule.objects.unscoped()
        .filter(is_active=True, trigger__in=[AutomationTrigger.NO_REPLY, AutomationTrigger.NO_ACTIVITY])
        .select_related("organization")
    )
    for rule in rules:
        hours = int((rule.trigger_config or {}).get("hours") or 0)
        if hours <= 0 or not rule.organization.is_active:
            continue
        cutoff = now - timedelta(hours=hours)
        with organization_scope(rule.organization):
            if rule.trigger == AutomationTrigger.NO_REPLY:
                pairs = _awaiting_reply(rule.organization_id, cutoff)
            else:
                pairs = [
                    (lead, f"idle:{lead.updated_at.isoformat()}")
                    for lead in Lead.objects.filter(
                        updated_at__lte=cutoff, stage__kind=StageKind.OPEN, duplicate_of__isnull=True
                    ).select_related("stage", "organization", "owner")[:500]
                ]
            for lead, key in pairs:
                started += automations_trigger(
                    organization=rule.organization,
                    trigger=rule.trigger,
                    leads=[lead],
                    key=key,
                    config_filter=lambda candidate, rule_id=rule.pk: candidate.pk == rule_id,
                )
    return started


def _awaiting_reply(organization_id: int, cutoff: datetime) -> list[tuple[Lead, str]]:
    """Leads whose last message in a conversation is ours, sent before ``cutoff``, and unanswered."""
    from ..models import Conversation

    conversations = (
        Conversation.objects.unscoped()
        .filter(organization_id=organization_id, lead__isnull=False, last_outbound_at__lte=cutoff)
        .select_related("lead__stage", "lead__organization", "lead__owner")
    )
    pairs = []
    for conversation in conversations[:500]:
        if conversation.last_inbound_at and conversation.last_inbound_at >= conversation.last_outbound_at:
            continue
        if conversation.lead.stage.kind != StageKind.OPEN:
            continue
        pairs.append((conversation.lead, f"no_reply:{conversation.pk}:{conversation.last_outbound_at.isoformat()}"))
    return pairs
