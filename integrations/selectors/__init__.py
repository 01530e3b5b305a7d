"""Reads of the integrations app, one module per subsystem; always scoped to the organization in context."""
