"""The Redis channel layer, made to ride out a slow or restarting Redis instead of dropping every live socket.

channels-redis waits for a socket's events with a blocking ``BZPOPMIN`` of ``brpop_timeout`` (5 s), and redis-py's
default read timeout is also 5 s: under load the answer to a 5-second block comes back a little after 5 s, the
read times out, the exception escapes the consumer and daphne closes the websocket. Two changes:

- its connections get a read timeout comfortably longer than the block (unless the hosts setting names one);
- a failed receive is retried a failed receive with capped backoff. Nothing is lost meanwhile:
  the events wait in the socket's Redis list (channels-redis keeps a backup of a message until it is handled),
  and its group memberships stay. Only after ``RECEIVE_GIVE_UP_SECONDS`` of failures does the error escape, so
  the socket closes and the page reconnects and refetches (``static/js/realtime.js``) rather than sitting open
  and deaf.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels_redis.core import RedisChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# channels-redis blocks this long waiting for a socket's next event (its default).
BLOCKING_RECEIVE_SECONDS = 5
# The read timeout of the layer's connections: the block plus room for a busy Redis or a busy event loop.
READ_TIMEOUT_SECONDS = BLOCKING_RECEIVE_SECONDS + 10
RECEIVE_GIVE_UP_SECONDS = 30
RETRY_FIRST_DELAY_SECONDS = 0.1
RETRY_MAX_DELAY_SECONDS = 2.0

TRANSIENT_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


def _with_read_timeout(host) -> dict:
    if isinstance(host, str):
        host = {"address": host}
    elif isinstance(host, (tuple, list)):
        host = {"host": host[0], "port": host[1]}
    return {"socket_timeout": READ_TIMEOUT_SECONDS, **host}


class ResilientRedisChannelLayer(RedisChannelLayer):
    brpop_timeout = BLOCKING_RECEIVE_SECONDS
    receive_give_up_seconds = RECEIVE_GIVE_UP_SECONDS

    def __init__(self, hosts=None, **config):
        super().__init__(hosts=[_with_read_timeout(host) for host in hosts or ["redis://localhost:6379"]], **config)

    async def receive(self, channel):
        delay = RETRY_FIRST_DELAY_SECONDS
        failing_since: float | None = None
        while True:
            try:
                message = await super().receive(channel)
            except TRANSIENT_REDIS_ERRORS as error:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since >= self.receive_give_up_seconds:
                    logger.error("channel layer receive failed for %.0f s, giving up: %r", now - failing_since, error)
                    raise
                logger.warning("channel layer receive failed, retrying in %.1f s: %r", delay, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY_SECONDS)
                continue
            if failing_since is not None:
                logger.info("channel layer receive recovered after %.1f s", time.monotonic() - failing_since)
            return message
