"""The base of every organization-owned API endpoint.

Subclasses declare ``queryset`` (the model's scoped manager), a serializer and roles; they narrow the queryset
in ``safely_get_queryset``. They cannot override ``get_queryset``, ``get_permissions``, ``initial`` or
``dispatch``: the tenant filter and the membership check cannot be forgotten or skipped.
"""

from __future__ import annotations

from rest_framework import mixins, viewsets
from rest_framework.views import APIView

from accounts.constants import ApiKeyScope, Role
from leadflow.tenancy.context import reset_scope, set_scope
from leadflow.tenancy.models import TenantManager

from .permissions import OrganizationPermission

_SEALED = ("get_queryset", "get_permissions", "initial", "dispatch")


class OrganizationScopedMixin:
    read_role: str = Role.VIEWER
    write_role: str = Role.ADMIN
    # Per action overrides, e.g. {"destroy": Role.OWNER}.
    action_roles: dict[str, str] = {}
    read_scope: str | None = ApiKeyScope.READ
    write_scope: str | None = ApiKeyScope.WRITE

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _SEALED:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}(); narrow the queryset in safely_get_queryset() and declare "
                    "roles with read_role/write_role/action_roles instead"
                )

    # The sealed methods ---------------------------------------------------------------------------------------

    def get_permissions(self):
        return [
            OrganizationPermission(),
            *[permission() for permission in getattr(self, "extra_permission_classes", ())],
        ]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._scope_token = set_scope(request.organization)

    def dispatch(self, request, *args, **kwargs):
        self._scope_token = None
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self._scope_token is not None:
                reset_scope(self._scope_token)

    def get_queryset(self):
        manager = self.queryset
        if not isinstance(manager, TenantManager):
            raise TypeError(
                f"{type(self).__name__}.queryset must be a tenant model's scoped manager, e.g. Lead.objects"
            )
        return self.safely_get_queryset(manager.all())

    # The hooks ------------------------------------------------------------------------------------------------

    def safely_get_queryset(self, queryset):
        return queryset

    def required_role(self, is_read: bool) -> str:
        if self.action in self.action_roles:
            return self.action_roles[self.action]
        return self.read_role if is_read else self.write_role

    def required_api_key_scope(self, is_read: bool) -> str | None:
        return self.read_scope if is_read else self.write_scope


class OrganizationScopedViewSet(OrganizationScopedMixin, viewsets.GenericViewSet):
    """Add the mixins you need (list, retrieve, …); the tenant filter comes with the base."""


class OrganizationModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrganizationScopedViewSet,
):
    def perform_create(self, serializer):
        serializer.save(organization=self.request.organization)


class OrganizationScopedAPIView(OrganizationScopedMixin, APIView):
    """The organization-scoped base for plain API views (no viewset actions: one role for reads, one for writes)."""

    def required_role(self, is_read: bool) -> str:
        return self.read_role if is_read else self.write_role
