"""The one way LeadFlow calls a model: budget checked first, tokens and cost counted after."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from ..models import AiUsage
from ..services.channels import messaging_settings_for

MILLION = Decimal(1_000_000)


class AiUnavailable(Exception):
    """No key, AI turned off for the organization, the budget spent, or the model did not answer usably."""


@dataclass(frozen=True)
class Completion:
    content: Any
    model: str
    prompt_tokens: int
    completion_tokens: int


def ai_configured() -> bool:
    return bool(settings.OPENAI_API_KEY)


@functools.cache
def _client(api_key: str, base_url: str | None, timeout: float):
    from openai import OpenAI

    return OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=1)


def client():
    return _client(settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.OPENAI_TIMEOUT_S)


def month_start():
    return timezone.localdate().replace(day=1)


def spent_this_month(organization_id: int) -> Decimal:
    usage = AiUsage.objects.unscoped().filter(organization_id=organization_id, month=month_start()).first()
    return usage.cost if usage else Decimal("0")


def ai_available(organization_id: int) -> bool:
    if not ai_configured():
        return False
    row = messaging_settings_for(organization_id)
    return row.ai_enabled and spent_this_month(organization_id) < row.ai_monthly_budget


def cost_of(prompt_tokens: int, completion_tokens: int) -> Decimal:
    return (
        Decimal(prompt_tokens) * settings.OPENAI_COST_PER_MILLION_INPUT
        + Decimal(completion_tokens) * settings.OPENAI_COST_PER_MILLION_OUTPUT
    ) / MILLION


def usage_add(organization_id: int, *, prompt_tokens: int, completion_tokens: int) -> None:
    month = month_start()
    AiUsage.objects.unscoped().bulk_create(
        [AiUsage(organization_id=organization_id, month=month)], ignore_conflicts=True
    )
    AiUsage.objects.unscoped().filter(organization_id=organization_id, month=month).update(
        requests=F("requests") + 1,
        prompt_tokens=F("prompt_tokens") + prompt_tokens,
        completion_tokens=F("completion_tokens") + completion_tokens,
        cost=F("cost") + cost_of(prompt_tokens, completion_tokens),
    )


def complete(
    *, organization_id: int, messages: list[dict], json_schema: dict | None = None, max_tokens: int = 300
) -> Completion:
    """One chat completion for the organization, within its budget. With ``json_schema`` the answer is structured
    output (``response_format`` ``json_schema``, strict) and comes back parsed."""
    from openai import OpenAIError

    if not ai_available(organization_id):
        raise AiUnavailable("AI is off, or this month's budget is spent.")
    options: dict[str, Any] = {"model": settings.OPENAI_MODEL, "messages": messages, "max_tokens": max_tokens}
    if json_schema is not None:
        options["response_format"] = {"type": "json_schema", "json_schema": json_schema}
    try:
        response = client().chat.completions.create(**options)
    except OpenAIError as error:
        raise AiUnavailable(f"The model did not answer: {error}") from error
    usage = response.usage
    prompt_tokens = usage.prompt_tokens if usage else 0
    completion_tokens = usage.completion_tokens if usage else 0
    usage_add(organization_id, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    text = (response.choices[0].message.content or "").strip() if response.choices else ""
    content: Any = text
    if json_schema is not None:
        try:
            content = json.loads(text)
        except ValueError as error:
            raise AiUnavailable("The model's answer was not the JSON asked for.") from error
    return Completion(content, response.model or settings.OPENAI_MODEL, prompt_tokens, completion_tokens)
