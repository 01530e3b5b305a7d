"""The integrations app's forms, one module per subsystem."""
