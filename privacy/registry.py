"""Where a person's data lives, app by app: each app registers a source that can export and erase it.

A **person** is someone whose details an organization holds as a lead contact, named by an email address and/or a
phone number. ``PersonTarget`` carries what was asked for (normalized) and the ids of the organization's leads that
match it. Each ``PersonDataSource`` finds its own rows from that — rows linked to those leads, and stored payloads
that mention the email or phone — and returns them as plain JSON-able dicts (``export``) or deletes or anonymizes
them (``erase``, inside the caller's transaction, returning how many rows it changed).

Sources erase in the reverse order of registration, so the leads themselves (registered first) are anonymized last,
after everything that finds its rows through them. Another app adds its rows with::

    from privacy.registry import PersonDataSource, register_source

    @register_source
    class MessagesSource(PersonDataSource):
        key, label = "messages", "WhatsApp and SMS messages"
        def export(self, target): ...
        def erase(self, target): ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import phonenumbers


@dataclass(frozen=True)
class PersonTarget:
    organization: Any
    email: str = ""
    phone: str = ""  # E.164
    lead_ids: tuple[int, ...] = field(default_factory=tuple)

    @property
    def phone_digits(self) -> str:
        """The national number's digits: how a phone appears in raw payloads whatever its formatting."""
        if not self.phone:
            return ""
        try:
            return str(phonenumbers.parse(self.phone).national_number)
        except phonenumbers.NumberParseException:
            return ""

    @property
    def identifiers(self) -> list[str]:
        return [value for value in (self.email, self.phone) if value]


class PersonDataSource:
    key: str = ""
    label: str = ""

    def export(self, target: PersonTarget) -> list[dict[str, Any]]:
        raise NotImplementedError

    def erase(self, target: PersonTarget) -> int:
        raise NotImplementedError


_sources: list[PersonDataSource] = []


def register_source(source_class: type[PersonDataSource]) -> type[PersonDataSource]:
    if any(source.key == source_class.key for source in _sources):
        raise ValueError(f"a person data source named {source_class.key!r} is already registered")
    _sources.append(source_class())
    return source_class


def person_data_sources() -> list[PersonDataSource]:
    return list(_sources)
