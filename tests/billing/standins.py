"""Local stand-ins for the Razorpay and Stripe APIs: real HTTP on 127.0.0.1, answering canned JSON shaped like the
providers document their responses, and recording every request so tests can assert what LeadFlow sent."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    body: bytes
    headers: dict

    def form(self) -> dict:
        """Stripe sends form-encoded bodies (``items[0][price]=…``)."""
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(self.body.decode()).items()}

    def json(self) -> dict:
        return json.loads(self.body or b"{}")


@dataclass
class StandIn:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    # (method, regex) → callable(recorded, match) → (status, json body)
    routes: list = field(default_factory=list)
    # GET /v1/<kind>/<id> answers whatever is stored here under the id (Stripe's retrieve)
    objects: dict[str, dict] = field(default_factory=dict)

    def route(self, method: str, pattern: str, answer):
        """``answer`` is a dict (answered as is) or ``callable(recorded, match) -> dict | (status, dict)``."""
        self.routes.insert(0, (method.upper(), re.compile(pattern + r"$"), answer))

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method.upper() and r.path.startswith(path_prefix)]

    def _answer(self, recorded: Recorded):
        for method, pattern, answer in self.routes:
            match = pattern.match(recorded.path)
            if method == recorded.method and match:
                result = answer(recorded, match) if callable(answer) else answer
                return result if isinstance(result, tuple) else (200, result)
        if recorded.method == "GET":
            object_id = recorded.path.rstrip("/").rsplit("/", 1)[-1]
            if object_id in self.objects:
                return 200, self.objects[object_id]
        return 404, {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": f"No such route or object: {recorded.method} {recorded.path}",
            }
        }


def serve(stand_in: StandIn):
    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            recorded = Recorded(
                self.command,
                parts.path,
                parse_qs(parts.query),
                self.rfile.read(length) if length else b"",
                dict(self.headers),
            )
            stand_in.requests.append(recorded)
            status, body = stand_in._answer(recorded)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", "req_standin")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server
