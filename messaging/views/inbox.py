"""The unified inbox: the conversation list with its filters, a thread, the reply box with its template picker,
assign, archive and read/unread. htmx swaps the list and the thread; ``static/js/inbox.js`` refreshes them when
the websocket says a message arrived or a status changed."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from accounts.constants import Role
from accounts.models import User
from leadflow.exceptions import ServiceError
from leadflow.tenancy.views import OrganizationRequiredMixin
from leads.forms import add_errors
from leads.page_selectors import assignable_members

from .. import selectors
from ..constants import MessageChannel
from ..forms import ReplyForm
from ..models import AiSuggestion, Conversation
from ..services import conversations as services
from ..services.compliance import active_opt_out, whatsapp_window_open
from ..services.sending import message_send


class InboxMixin(OrganizationRequiredMixin):
    required_role = Role.AGENT

    def conversation(self, pk: int) -> Conversation:
        queryset = services.visible_conversations(Conversation.objects.all(), membership=self.request.membership)
        return get_object_or_404(queryset.select_related("lead__stage", "assignee"), pk=pk)

    def list_context(self) -> dict:
        params = self.request.GET
        view, channel, q = params.get("view", ""), params.get("channel", ""), params.get("q", "").strip()
        conversations = selectors.inbox_conversations(
            membership=self.request.membership, view=view, channel=channel, q=q
        )[:100]
        current = params.get("current") or params.get("c") or ""
        return {
            "conversations": conversations,
            "current_id": int(current) if current.isdigit() else None,
            "selected": {"view": view, "channel": channel, "q": q},
            "views": [
                ("", "All open"),
                ("mine", "Mine"),
                ("unassigned", "Unassigned"),
                ("unread", "Unread"),
                ("archived", "Archived"),
            ],
            "channels": MessageChannel.choices,
        }

    def thread_context(self, conversation: Conversation, form: ReplyForm | None = None) -> dict:
        organization = self.request.organization
        return {
            "conversation": conversation,
            "thread": selectors.thread_messages(conversation),
            "form": form or ReplyForm(conversation=conversation),
            "members": assignable_members(),
            "window_open": whatsapp_window_open(conversation),
            "opted_out": active_opt_out(
                organization_id=organization.pk, lead=conversation.lead, address=conversation.address
            ),
            "suggestions": AiSuggestion.objects.filter(conversation=conversation, status="proposed")[:3],
        }


class InboxView(InboxMixin, View):
    def get(self, request):
        context = self.list_context()
        selected = request.GET.get("c")
        if selected and selected.isdigit():
            conversation = self.conversation(int(selected))
            services.conversation_mark_read(conversation=conversation, actor=request.user)
            context.update(self.thread_context(conversation))
        return render(request, "messaging/pages/inbox.html", context)


class ConversationListView(InboxMixin, View):
    def get(self, request):
        return render(request, "messaging/partials/conversation_list.html", self.list_context())


class UnreadBadgeView(InboxMixin, View):
    required_role = Role.VIEWER

    def get(self, request):
        total = selectors.inbox_unread_total(membership=request.membership)
        return HttpResponse(str(total) if total else "", content_type="text/plain")


class ThreadView(InboxMixin, View):
    def get(self, request, pk: int):
        conversation = self.conversation(pk)
        if request.GET.get("read") != "0":
            services.conversation_mark_read(conversation=conversation, actor=request.user)
        return render(request, "messaging/partials/thread.html", self.thread_context(conversation))


class ReplyView(InboxMixin, View):
    def post(self, request, pk: int):
        conversation = self.conversation(pk)
        form = ReplyForm(request.POST, conversation=conversation)
        if form.is_valid():
            try:
                message_send(
                    organization=request.organization,
                    channel=conversation.channel,
                    conversation=conversation,
                    body=form.cleaned_data["body"],
                    template=form.cleaned_data["template"],
                    actor=request.user,
                )
            except ServiceError as error:
                add_errors(form, error)
            else:
                suggestion_id = request.POST.get("suggestion")
                if suggestion_id and suggestion_id.isdigit():
                    from ..ai.suggestions import suggestion_decide

                    suggestion = AiSuggestion.objects.filter(pk=int(suggestion_id), conversation=conversation).first()
                    if suggestion is not None:
                        suggestion_decide(suggestion=suggestion, user=request.user, sent_text=form.cleaned_data["body"])
                if not request.htmx:
                    return redirect(f"{reverse('messaging:inbox')}?c={conversation.pk}")
                conversation.refresh_from_db()
                return render(request, "messaging/partials/thread.html", self.thread_context(conversation))
        if not request.htmx:
            context = {**self.list_context(), **self.thread_context(conversation, form)}
            return render(request, "messaging/pages/inbox.html", context, status=400)
        return render(request, "messaging/partials/thread.html", self.thread_context(conversation, form), status=400)


class ConversationActionView(InboxMixin, View):
    ACTIONS = ("assign", "archive", "reopen", "read", "unread", "suggest", "reject-suggestion")

    def post(self, request, pk: int, action: str):
        if action not in self.ACTIONS:
            raise Http404("No such action.")
        conversation = self.conversation(pk)
        try:
            if action == "assign":
                user_id = request.POST.get("assignee", "")
                assignee = User.objects.filter(pk=user_id).first() if user_id.isdigit() else None
                services.conversation_assign(conversation=conversation, assignee=assignee, actor=request.user)
            elif action == "archive":
                services.conversation_archive(conversation=conversation, actor=request.user)
            elif action == "reopen":
                services.conversation_reopen(conversation=conversation, actor=request.user)
            elif action == "read":
                services.conversation_mark_read(conversation=conversation, actor=request.user)
            elif action == "unread":
                services.conversation_mark_unread(conversation=conversation, actor=request.user)
            elif action == "suggest":
                from ..ai.suggestions import suggestion_request

                suggestion_request(conversation=conversation, user=request.user)
            elif action == "reject-suggestion":
                from ..ai.suggestions import suggestion_decide

                suggestion = get_object_or_404(
                    AiSuggestion, pk=request.POST.get("suggestion"), conversation=conversation
                )
                suggestion_decide(suggestion=suggestion, user=request.user, sent_text=None)
        except ServiceError as error:
            messages.error(request, error.message)
        if not request.htmx:
            return redirect(f"{reverse('messaging:inbox')}?c={conversation.pk}")
        conversation.refresh_from_db()
        response = render(request, "messaging/partials/thread.html", self.thread_context(conversation))
        response["HX-Trigger"] = "inbox-changed"
        return response
