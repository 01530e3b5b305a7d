"""Platform tasks (operations); each app's own tasks live in its ``tasks.py``."""

from celery import shared_task


@shared_task(ignore_result=True)
def record_beat_tick() -> float:
    """Queued by beat every 30 seconds: its last run shows that beat, the broker and a worker all work."""
    from .operations.heartbeats import beat_tick_record

    return beat_tick_record()
