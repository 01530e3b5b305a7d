"""The integrations app's views, one module per subsystem."""
