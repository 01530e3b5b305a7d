"""The FilterSet base of LeadFlow's lists: django-filter's, without its per-request rebuilding.

For every request django-filter deep-copies every filter, builds a form field for each and a new form class out of
them, and the form deep-copies those fields again: on the lead list that was a quarter of the request's CPU. Here
the form class is built once per FilterSet class, and each request copies the filters shallowly (they are
configuration; a request's copy only gets its own ``parent``). The form still deep-copies its fields per
instance, as every Django form does, so no request's bound state reaches another.
"""

from __future__ import annotations

import copy

import django_filters
from django.http import QueryDict


class FilterSet(django_filters.FilterSet):
    def __init__(self, data=None, queryset=None, *, request=None, prefix=None):
        if queryset is None:
            queryset = self._meta.model._default_manager.all()
        self.is_bound = data is not None
        self.data = data or QueryDict()
        self.queryset = queryset
        self.request = request
        self.form_prefix = prefix
        self.filters = {}
        for name, base in self.base_filters.items():
            filter_ = copy.copy(base)
            filter_.model, filter_.parent = queryset.model, self
            if base.method is not None:
                filter_.method = base.method  # rebinds its FilterMethod to this copy, whose parent is this filterset
            self.filters[name] = filter_

    def get_form_class(self):
        cls = type(self)
        form_class = cls.__dict__.get("_form_class")
        if form_class is None:
            fields = {name: filter_.field for name, filter_ in cls.base_filters.items()}
            form_class = type(f"{cls.__name__}Form", (cls._meta.form,), fields)
            cls._form_class = form_class  # per class: a subclass builds its own
        return form_class
