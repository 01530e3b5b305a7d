"""Running the platform: worker heartbeats and beat's tick (written by the processes themselves), and the live
checks behind the operator console's system health and campaign monitoring pages."""
