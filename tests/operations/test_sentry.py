"""Sentry: initialized from SENTRY_DSN only, and its events reach the DSN's host tagged with the request id.

The DSN points at a loopback stand-in that keeps what the SDK posts to ``/api/<project>/envelope/``; the SDK runs
in a child process so its global hooks never stay installed in the test process.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

CHILD = r"""
import logging, django
django.setup()
import sentry_sdk
from leadflow.logs import request_id_var
assert sentry_sdk.get_client().is_active(), "SENTRY_DSN is set: the SDK must be on"
request_id_var.set("req-sentry-000001")
try:
    {}["missing"]
except KeyError:
    logging.getLogger("leadflow.test").exception("intake exploded")
sentry_sdk.flush(timeout=10)
"""


@pytest.fixture
def sentry_standin():
    envelopes: list[list[dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "br":
                import brotli

                body = brotli.decompress(body)
            envelopes.append([json.loads(line) for line in body.splitlines() if line.strip().startswith(b"{")])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://publickey@127.0.0.1:{server.server_port}/42", envelopes
    server.shutdown()


def test_errors_are_sent_with_the_request_id(sentry_standin):
    dsn, envelopes = sentry_standin
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadflow.settings.test",
        "SENTRY_DSN": dsn,
        "SENTRY_RELEASE": "test-1",
    }
    env["SENTRY_ENVIRONMENT"] = "staging"
    result = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert result.returncode == 0, result.stderr
    events = [item for envelope in envelopes for item in envelope if item.get("exception")]
    assert events, f"no error event reached the stand-in: {envelopes}"
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "KeyError"
    assert event["tags"]["request_id"] == "req-sentry-000001"
    assert event["release"] == "test-1"
    assert event["environment"] == "staging"


def test_without_a_dsn_sentry_is_off():
    assert not sentry_sdk.get_client().is_active()
