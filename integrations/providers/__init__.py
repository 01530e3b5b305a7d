"""One module per inbound provider: how its requests are authenticated and how its payloads become the intake's
standard shape (each registers its mapper with ``leads.intake.mapping.register_mapper``)."""
