"""Reply suggestions: the model reads the conversation's last messages and proposes a reply; an agent approves it
(sends it as is), edits it (sends their version) or rejects it. Every decision is kept on the suggestion."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from leadflow.exceptions import ServiceError

from ..constants import Direction
from ..models import AiSuggestion, AiSuggestionStatus, Conversation, Message
from .client import AiUnavailable, ai_available, complete

CONTEXT_MESSAGES = 12


def suggestion_request(*, conversation: Conversation, user) -> None:
    if not ai_available(conversation.organization_id):
        raise ServiceError("AI suggestions are off (no key, turned off, or this month's budget is spent).")
    from ..tasks import score_conversation_suggestion

    conversation_id, user_id = conversation.pk, user.pk if user else None
    transaction.on_commit(lambda: score_conversation_suggestion.delay(conversation_id, user_id))


def suggestion_create(*, conversation_id: int, user_id: int | None = None) -> AiSuggestion | None:
    conversation = (
        Conversation.objects.unscoped().select_related("organization", "lead").filter(pk=conversation_id).first()
    )
    if conversation is None:
        return None
    history = list(
        Message.objects.unscoped().filter(conversation=conversation).order_by("-created_at", "-id")[:CONTEXT_MESSAGES]
    )
    history.reverse()
    organization = conversation.organization
    prompt = [
        {
            "role": "system",
            "content": (
                f"You write short, friendly, professional replies for {organization.name}'s sales team on "
                f"{conversation.get_channel_display()}. Answer the customer's last message in their language in at most "
                "three sentences. Never invent prices, dates or promises; ask a clarifying question instead."
            ),
        },
        *(
            {"role": "user" if m.direction == Direction.INBOUND else "assistant", "content": m.body or "[attachment]"}
            for m in history
        ),
    ]
    try:
        completion = complete(organization_id=organization.pk, messages=prompt, max_tokens=200)
    except AiUnavailable:
        return None
    last_inbound = next((m for m in reversed(history) if m.direction == Direction.INBOUND), None)
    suggestion = AiSuggestion.objects.unscoped().create(
        organization_id=organization.pk,
        conversation=conversation,
        in_reply_to=last_inbound,
        text=str(completion.content)[:4000],
        model=completion.model[:80],
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        requested_by_id=user_id,
    )
    from leadflow.realtime import publish

    publish(organization, "conversation.updated", {"id": conversation.pk, "suggestion_id": suggestion.pk})
    return suggestion


@transaction.atomic
def suggestion_decide(*, suggestion: AiSuggestion, user, sent_text: str | None) -> AiSuggestion:
    """``sent_text`` None rejects; the suggestion's own text approves; anything else is an edit."""
    if suggestion.status != AiSuggestionStatus.PROPOSED:
        return suggestion
    if sent_text is None:
        suggestion.status = AiSuggestionStatus.REJECTED
    else:
        same = sent_text.strip() == suggestion.text.strip()
        suggestion.status = AiSuggestionStatus.APPROVED if same else AiSuggestionStatus.EDITED
        suggestion.final_text = sent_text
        suggestion.sent_message = (
            Message.objects.filter(conversation=suggestion.conversation, direction=Direction.OUTBOUND, sent_by=user)
            .order_by("-created_at")
            .first()
        )
    suggestion.decided_by, suggestion.decided_at = user, timezone.now()
    suggestion.save()
    return suggestion
