"""Writes of the messaging app."""
