"""The base of every tenant-owned model and its fail-closed manager."""

from __future__ import annotations

from django.db import models

from .context import ALL_ORGANIZATIONS, OrganizationScopeMissing, get_current_organization, get_scope


class TenantQuerySet(models.QuerySet):
    """A queryset that refuses to read when it was built with no organization in scope.

    Such a queryset still exists (Django builds some at import time, e.g. for form fields), but it matches
    nothing when used as a subquery and raises :class:`OrganizationScopeMissing` when evaluated.
    """

    _scope_missing = False

    def _clone(self):
        clone = super()._clone()
        clone._scope_missing = self._scope_missing
        return clone

    def _refuse_if_unscoped(self) -> None:
        if self._scope_missing:
            raise OrganizationScopeMissing(
                f"{self.model.__name__} was queried with no organization in scope; use organization_scope(), "
                f"operator_scope() or {self.model.__name__}.objects.unscoped()"
            )

    def _fetch_all(self):
        self._refuse_if_unscoped()
        super()._fetch_all()

    def iterator(self, *args, **kwargs):
        self._refuse_if_unscoped()
        return super().iterator(*args, **kwargs)

    def aiterator(self, *args, **kwargs):
        self._refuse_if_unscoped()
        return super().aiterator(*args, **kwargs)

    def count(self):
        self._refuse_if_unscoped()
        return super().count()

    def exists(self):
        self._refuse_if_unscoped()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        self._refuse_if_unscoped()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        self._refuse_if_unscoped()
        return super().update(**kwargs)

    def delete(self):
        self._refuse_if_unscoped()
        return super().delete()

    def contains(self, obj):
        self._refuse_if_unscoped()
        return super().contains(obj)

    # Writes fill the organization from the scope. They live on the queryset, not only the manager, so that
    # get_or_create() and update_or_create() (which call the queryset's create()) get it too.

    def _organization_for_write(self):
        organization = get_current_organization()
        if organization is None:
            raise OrganizationScopeMissing(f"{self.model.__name__} needs an organization to be created")
        return organization

    def create(self, **kwargs):
        if "organization" not in kwargs and "organization_id" not in kwargs:
            kwargs["organization"] = self._organization_for_write()
        return super().create(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        missing = [obj for obj in objs if obj.organization_id is None]
        if missing:
            organization = self._organization_for_write()
            for obj in missing:
                obj.organization = organization
        return super().bulk_create(objs, *args, **kwargs)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """Scopes every query to the organization in context; raises when there is none."""

    def get_queryset(self) -> TenantQuerySet:
        queryset = super().get_queryset()
        scope = get_scope()
        if scope is ALL_ORGANIZATIONS:
            return queryset
        if scope is None:
            guarded = queryset.none()
            guarded._scope_missing = True
            return guarded
        return queryset.filter(organization_id=scope.pk)

    def unscoped(self) -> models.QuerySet:
        """Every organization's rows. Only for the admin, authentication and operator code: it stands out in review."""
        return models.QuerySet(model=self.model, using=self._db)


class TenantModel(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True

    # Django follows foreign keys and collects cascades with `_base_manager`, a plain Manager that sees every
    # row: deleting an organization still deletes everything it owns.
