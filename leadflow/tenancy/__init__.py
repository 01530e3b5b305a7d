"""Tenancy, enforced in one place.

Every tenant-owned model inherits :class:`~leadflow.tenancy.models.TenantModel`; its default manager reads the
organization from :mod:`leadflow.tenancy.context` and refuses to run a query when none is set. Entry points
(page middleware, the API base viewset, the websocket consumer, tasks, commands) set the scope and reset it.
"""
