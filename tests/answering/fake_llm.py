"""Real HTTP servers on 127.0.0.1 that speak Ollama's /api/chat NDJSON and OpenAI's SSE streaming."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeModelServer:
    """`tokens` are streamed one per line/event; `delay` seconds between them; `mode` picks a failure."""

    def __init__(self, tokens: list[str], delay: float = 0.0, mode: str = "ok") -> None:
        self.tokens = tokens
        self.delay = delay
        self.mode = mode  # ok | http_error | break_midway
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                server.requests.append(json.loads(self.rfile.read(length) or b"{}"))
                server.headers.append(dict(self.headers))
                if server.mode == "http_error":
                    body = b'{"error":"model not found"}'
                    self.send_response(404)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.path == "/api/chat":
                    server._ollama(self)
                elif self.path == "/v1/chat/completions":
                    server._openai(self)
                else:
                    self.send_error(404)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _write(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()

    def _ollama(self, handler: BaseHTTPRequestHandler) -> None:
        model = self.requests[-1].get("model", "")
        handler.send_response(200)
        handler.send_header("content-type", "application/x-ndjson")
        handler.end_headers()  # HTTP/1.0: the body ends when the connection closes
        for n, token in enumerate(self.tokens):
            if self.mode == "break_midway" and n == len(self.tokens) // 2:
                self._write(handler, b'{"error":"model runner crashed"}\n')
                return
            time.sleep(self.delay)
            line = {
                "model": model,
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "message": {"role": "assistant", "content": token},
                "done": False,
            }
            self._write(handler, json.dumps(line).encode() + b"\n")
        final = {
            "model": model,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message": {"role": "assistant", "content": ""},
            "done_reason": "stop",
            "done": True,
            "total_duration": 912_000_000,
            "load_duration": 12_000_000,
            "prompt_eval_count": 321,
            "prompt_eval_duration": 400_000_000,
            "eval_count": len(self.tokens),
            "eval_duration": 500_000_000,
        }
        self._write(handler, json.dumps(final).encode() + b"\n")

    def _openai(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.end_headers()
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        first = {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
        self._write(handler, f"data: {json.dumps(first)}\n\n".encode())
        for token in self.tokens:
            time.sleep(self.delay)
            chunk = {**base, "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]}
            self._write(handler, f"data: {json.dumps(chunk)}\n\n".encode())
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self._write(handler, f"data: {json.dumps(last)}\n\n".encode())
        usage = {**base, "choices": [], "usage": {"prompt_tokens": 111, "completion_tokens": 7, "total_tokens": 118}}
        self._write(handler, f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
