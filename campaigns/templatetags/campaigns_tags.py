from django import template

register = template.Library()

REASON_LABELS = {
    "paused": "paused",
    "outside_schedule": "outside schedule",
    "state_not_wanted": "state not wanted",
    "filtered_out": "filtered out",
    "already_bought": "already bought",
    "capped": "capped",
    "spending_limit": "spending limit",
    "insufficient_funds": "insufficient funds",
    "not_chosen": "another buyer's turn",
}


@register.filter
def reason_label(reason: str) -> str:
    return REASON_LABELS.get(reason, str(reason).replace("_", " "))


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in templates (buyer ids are strings in a distribution's reasons)."""
    try:
        return mapping.get(str(key), mapping.get(key))
    except AttributeError:
        return None
