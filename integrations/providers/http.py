"""One HTTP client per process for the providers' APIs (Graph, LinkedIn).

``httpx.get(...)`` builds a client, and with it an SSL context, on every call: about 35 ms of CPU, more than the
rest of fetching and storing a lead. A client kept for the process reuses its SSL context and its connections.
It is rebuilt in a forked child (a Celery prefork worker), which must not share its parent's sockets.
"""

from __future__ import annotations

import os
import threading

import httpx

_lock = threading.Lock()
_client: httpx.Client | None = None
_pid = 0


def provider_client() -> httpx.Client:
    global _client, _pid
    with _lock:
        if _client is None or _pid != os.getpid():
            _client, _pid = httpx.Client(follow_redirects=False), os.getpid()
        return _client
