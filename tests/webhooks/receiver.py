#!/usr/bin/env python3
"""A scripted Standard Webhooks receiver for the interop test of crates/webhooks.

It checks every webhook with the `standardwebhooks` package (an implementation
independent of ours) and logs what it saw, one JSON line per webhook.

    receiver.py --secret whsec_... [--secret whsec_...] --port 0 --log FILE

Prints {"port": N} on stdout once listening. Endpoints:
    POST /_control  {"plan": ["500", "429:2", "timeout:10", "200"]}
                    sets how the next webhooks are answered, one entry each:
                    "CODE" answers CODE, "429:N" answers 429 with Retry-After: N,
                    "timeout:S" sleeps S seconds and then answers 200;
                    with the plan used up, webhooks get 200.
    GET  /_log      the log lines as one JSON array.
    POST (other)    a webhook: 400 when no secret verifies it (the plan is kept).
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


class State:
    def __init__(self, secrets, log_path):
        self.webhooks = [Webhook(s) for s in secrets]
        self.log_path = log_path
        self.lock = threading.Lock()
        self.plan = []
        self.lines = []

    def set_plan(self, plan):
        with self.lock:
            self.plan = [str(entry) for entry in plan]

    def next_entry(self):
        with self.lock:
            return self.plan.pop(0) if self.plan else "200"

    def append_log(self, entry):
        line = json.dumps(entry)
        with self.lock:
            self.lines.append(entry)
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()

    def verify(self, body, headers):
        """Returns (verified, error): verified when any one secret verifies."""
        error = "no secret configured"
        for webhook in self.webhooks:
            try:
                webhook.verify(body, headers)
                return True, None
            except Exception as e:  # the package raises several kinds
                error = f"{type(e).__name__}: {e}"
        return False, error


def parse_entry(entry):
    """Returns (status, extra headers, seconds to sleep) for one plan entry."""
    kind, _, arg = entry.partition(":")
    if kind == "timeout":
        return 200, {}, float(arg or 0)
    if kind == "429":
        return 429, {"Retry-After": arg} if arg else {}, 0.0
    return int(kind), {}, 0.0


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass  # keep stdout for the port line and stderr quiet

        def answer(self, status, body=b"", headers=None):
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def read_body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length)

        def do_GET(self):
            if self.path != "/_log":
                return self.answer(404)
            with state.lock:
                body = json.dumps(state.lines).encode()
            self.answer(200, body, {"Content-Type": "application/json"})

        def do_POST(self):
            body = self.read_body()
            if self.path == "/_control":
                state.set_plan(json.loads(body)["plan"])
                return self.answer(204)
            self.webhook(body)

        def webhook(self, body):
            headers = {k: v for k, v in self.headers.items()}
            verified, error = state.verify(body, headers)
            entry = parse_entry(state.next_entry()) if verified else (400, {}, 0.0)
            status, extra, sleep = entry
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            state.append_log({
                "id": self.headers.get("webhook-id"),
                "timestamp": self.headers.get("webhook-timestamp"),
                "verified": verified,
                "error": error,
                "body": parsed,
                "attempt_status": status,
                "user_agent": self.headers.get("user-agent"),
            })
            time.sleep(sleep)
            text = b"ok" if verified else f"invalid signature: {error}".encode()
            try:
                self.answer(status, text, extra)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting (a planned timeout)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", action="append", default=[], required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    state = State(args.secret, args.log)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
