"""A local HTTP server that speaks the Anthropic and OpenAI wire protocols, with faults.

Tests point the real ``anthropic`` and ``openai`` clients at it (``base_url``), so
that everything from request building to error classes is the libraries' own.

Endpoints (JSON in, JSON out, as the real APIs):

* ``POST /v1/messages``: Anthropic Messages. Reply text from ``judge(prompt)``.
* ``POST /v1/chat/completions``: OpenAI Chat Completions (also what a vLLM server
  speaks). Reply text from ``judge(prompt)``, or, when the model name contains
  "guard", from ``guard(text)`` (Llama Guard style "safe" / "unsafe\\nS1,S10").
* ``POST /v1/moderations``: OpenAI Moderations, from ``moderate(text)``.

Authentication: ``x-api-key`` or ``Authorization: Bearer`` must equal ``api_key``
(when set), else 401 with the provider's error body.

Faults: ``server.faults`` is a queue; each incoming request takes the next one:

* ``"429"``: rate limited, with ``Retry-After`` (seconds, ``retry_after``).
* ``"500"``, ``"503"``, ``"529"``: server errors (529 = Anthropic "overloaded").
* ``"400"``: a bad request (not retryable); ``"404"``: unknown model.
* ``"malformed"``: 200 with a truncated JSON body.
* ``"slow"``: a valid reply after ``slow_seconds`` (longer than the client timeout).
* ``"drop"``: the connection is closed without any response.
* ``"empty"``: 200, a valid reply whose text is empty.
* ``"refusal"``: 200, a refusal: Anthropic ``stop_reason: "refusal"``, OpenAI
  ``finish_reason: "content_filter"`` with ``message.refusal`` set.

``delay_seconds`` delays every reply (requests overlap, as with a real API).
Replies carry ``usage`` as the real APIs do: input tokens = words of the prompt,
output tokens = words of the reply.

``server.requests`` records (path, parsed body, fault) of every request, faulted
ones included, so tests can check that the counts add up; ``server.replied``
records (path, parsed body) of every 200 reply written out in full (what a client
was sent, and so may have been billed).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def default_judge(prompt: str) -> str:
    return "Answer: A"


def default_moderate(text: str) -> dict[str, bool]:
    """Flags on trigger words, so tests can predict the categories."""
    low = text.lower()
    flags = dict.fromkeys(OPENAI_CATEGORIES, False)
    if "kill" in low:
        flags["violence"] = True
    if "gore" in low:
        flags["violence"] = flags["violence/graphic"] = True
    if "hateful" in low:
        flags["hate"] = flags["harassment"] = True
    return flags


def default_guard(text: str) -> str:
    low = text.lower()
    codes = []
    if "kill" in low:
        codes.append("S1")
    if "hateful" in low:
        codes.append("S10")
    return "unsafe\n" + ",".join(codes) if codes else "safe"


def _text_of(content: Any) -> str:
    """Message content as text: a string, or a list of text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


class FakeAPIServer:
    """The server; use as a context manager (``with FakeAPIServer() as srv: srv.url``)."""

    def __init__(
        self,
        api_key: str | None = "sk-test-key",
        *,
        judge: Callable[[str], str] = default_judge,
        moderate: Callable[[str], dict[str, bool]] = default_moderate,
        guard: Callable[[str], str] = default_guard,
        retry_after: str = "1",
        slow_seconds: float = 2.0,
        delay_seconds: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.judge = judge
        self.moderate = moderate
        self.guard = guard
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.delay_seconds = delay_seconds
        self.replied: list[tuple[str, dict[str, Any]]] = []
        self.faults: deque[str] = deque()
        self.requests: list[tuple[str, dict[str, Any], str | None]] = []
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    @property
    def url(self) -> str:
        """Base URL without ``/v1`` (what the Anthropic client wants)."""
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def openai_url(self) -> str:
        """Base URL with ``/v1`` (what the OpenAI client wants)."""
        return self.url + "/v1"

    def start(self) -> FakeAPIServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> FakeAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- bookkeeping
    def next_fault(self) -> str | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def record(self, path: str, body: dict[str, Any], fault: str | None) -> None:
        with self.lock:
            self.requests.append((path, body, fault))

    def count(self, path: str | None = None, *, faulted: bool | None = None) -> int:
        with self.lock:
            return sum(
                1
                for p, _, f in self.requests
                if (path is None or p == path) and (faulted is None or (f is not None) == faulted)
            )


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAPIServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus
        # delayed ACKs add ~40 ms to every reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> bool:
        """Write the response; False if the client had gone."""
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return False  # the client gave up (timeout): nothing to do
        return True

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        if self.path.startswith("/v1/messages"):
            body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            body = {"error": {"message": message, "type": kind, "code": kind}}
        self._json(status, body, headers)

    def _authorised(self) -> bool:
        want = self.fake.api_key
        if want is None:
            return True
        got = self.headers.get("x-api-key")
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            got = got or auth[7:]
        return got == want

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        fault = self.fake.next_fault()
        self.fake.record(self.path, body, fault)
        if fault == "drop":
            # Close without a status line: the client sees a protocol / connection error.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if not self._authorised():
            kind = (
                "authentication_error"
                if self.path.startswith("/v1/messages")
                else "invalid_api_key"
            )
            self._error(401, kind, "invalid x-api-key")
            return
        if fault == "429":
            self._error(
                429, "rate_limit_error", "rate limited", {"retry-after": self.fake.retry_after}
            )
            return
        if fault in ("500", "503", "529", "400", "404"):
            kinds = {
                "500": "api_error",
                "503": "api_error",
                "529": "overloaded_error",
                "400": "invalid_request_error",
                "404": "not_found_error",
            }
            self._error(int(fault), kinds[fault], f"injected {fault}")
            return
        if fault == "slow":
            time.sleep(self.fake.slow_seconds)
        if self.fake.delay_seconds:
            time.sleep(self.fake.delay_seconds)
        try:
            reply = self._reply(body, fault)
        except KeyError as err:
            self._error(400, "invalid_request_error", f"missing field {err}")
            return
        if reply is None:
            self._error(404, "not_found_error", f"no route {self.path}")
            return
        payload = json.dumps(reply).encode()
        if fault == "malformed":
            payload = payload[: len(payload) // 2]
        if self._send(200, payload) and fault != "malformed":
            with self.fake.lock:
                self.fake.replied.append((self.path, body))

    def _reply(self, body: dict[str, Any], fault: str | None = None) -> dict[str, Any] | None:
        path = self.path.split("?")[0]
        model = body.get("model", "")
        if path == "/v1/messages":
            prompt = "\n".join(_text_of(m.get("content")) for m in body["messages"])
            text = "" if fault in ("empty", "refusal") else self.fake.judge(prompt)
            return {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "refusal" if fault == "refusal" else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": len(prompt.split()), "output_tokens": len(text.split())},
            }
        if path == "/v1/chat/completions":
            messages = body["messages"]
            if "guard" in model.lower():
                # Llama Guard rates the last turn.
                text = self.fake.guard(_text_of(messages[-1].get("content")))
            else:
                text = self.fake.judge("\n".join(_text_of(m.get("content")) for m in messages))
            prompt_words = sum(len(_text_of(m.get("content")).split()) for m in messages)
            refusal = "I can't help with that." if fault == "refusal" else None
            if fault in ("empty", "refusal"):
                text = ""
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None if refusal else text,
                            "refusal": refusal,
                        },
                        "finish_reason": "content_filter" if refusal else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_words,
                    "completion_tokens": len(text.split()),
                    "total_tokens": prompt_words + len(text.split()),
                },
            }
        if path == "/v1/moderations":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            results = []
            for text in inputs:
                flags = self.fake.moderate(text)
                results.append(
                    {
                        "flagged": any(flags.values()),
                        "categories": flags,
                        "category_scores": {k: (0.9 if v else 0.01) for k, v in flags.items()},
                        "category_applied_input_types": {k: ["text"] for k in flags},
                    }
                )
            return {
                "id": "modr-fake",
                "model": model or "omni-moderation-latest",
                "results": results,
            }
        return None
