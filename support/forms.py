from django import forms

from .constants import BODY_MAX_LENGTH, SUBJECT_MAX_LENGTH, TicketCategory


class TicketForm(forms.Form):
    subject = forms.CharField(max_length=SUBJECT_MAX_LENGTH)
    category = forms.ChoiceField(choices=TicketCategory.choices, initial=TicketCategory.QUESTION)
    body = forms.CharField(
        label="What happened?",
        max_length=BODY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Steps, what you expected, lead ids or links help us answer on the first reply.",
    )


class ReplyForm(forms.Form):
    body = forms.CharField(label="Your reply", max_length=BODY_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 5}))
