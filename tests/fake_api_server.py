"""A local HTTP server that speaks the Anthropic and OpenAI wire protocols, with faults.

Tests point the real ``anthropic`` and ``openai`` clients at it (``base_url``), so
that everything from request building to error classes is the libraries' own.

Endpoints (JSON in, JSON out, as the real APIs):

* ``POST /v1/messages``: Anthropic Messages. Reply text from ``judge(prompt)``.
* ``POST /v1/chat/completions``: OpenAI Chat Completions (also what a vLLM server
  speaks). Reply text from ``judge(prompt)``, or, when the model name contains
  "guard", from ``guard(text)`` (Llama Guard style "safe" / "unsafe\\nS1,S10").
* ``POST /v1/moderations``: OpenAI Moderations, from ``moderate(text)``.
* Anthropic Message Batches: ``POST /v1/messages/batches`` (``{requests: [{custom_id,
  params}]}``), ``GET /v1/messages/batches/{id}`` (``processing_status``,
  ``request_counts``, ``results_url`` once ended), ``GET .../{id}/results`` (JSONL of
  ``{custom_id, result: {type: succeeded|errored|canceled|expired, ...}}``),
  ``POST .../{id}/cancel``.
* OpenAI Batch: ``POST /v1/files`` (multipart, ``purpose=batch``; a JSONL of
  ``{custom_id, method, url, body}``), ``POST /v1/batches`` (``input_file_id``,
  ``endpoint``, ``completion_window``), ``GET /v1/batches/{id}`` (``status``,
  ``output_file_id``, ``error_file_id``), ``GET /v1/files/{id}/content``,
  ``POST /v1/batches/{id}/cancel``. Output lines ``{id, custom_id, response:
  {status_code, request_id, body}, error: null}``; errors in the error file
  (``batch_expired`` / ``batch_cancelled`` codes, or a non-200 ``response``).

Batches are processed when created (each item through the same reply code as a live
call) and end after ``batch_polls`` status requests. Faults: ``batch_faults`` is a
queue each batch item takes from: ``"error"`` (retryable: Anthropic ``api_error``,
OpenAI status 500), ``"invalid"`` (400, not retryable), ``"empty"``, ``"refusal"``,
``"canceled"`` (never processed: the batch was cancelled);
``batch_expire`` is a queue each new batch takes from: ``N`` (an int) = only its first
N items are processed, the rest expire (``None``: all processed).
``batch_fail_next``: the next OpenAI batch ends ``failed`` (validation) with no output.
``batch_items`` records (custom_id, params) of every item received.

Authentication: ``x-api-key`` or ``Authorization: Bearer`` must equal ``api_key``
(when set), else 401 with the provider's error body.

Faults: ``server.faults`` is a queue; each incoming request takes the next one:

* ``"429"``: rate limited, with ``Retry-After`` (seconds, ``retry_after``).
* ``"500"``, ``"503"``, ``"529"``: server errors (529 = Anthropic "overloaded").
* ``"400"``: a bad request (not retryable); ``"404"``: unknown model.
* ``"malformed"``: 200 with a truncated JSON body.
* ``"slow"``: no reply until the server stops (at most ``slow_seconds``): longer than any
  client timeout however loaded the machine is, without a sleep that a test waits out.
* ``"drop"``: the connection is closed without any response.
* ``"empty"``: 200, a valid reply whose text is empty.
* ``"refusal"``: 200, a refusal: Anthropic ``stop_reason: "refusal"``, OpenAI
  ``finish_reason: "content_filter"`` with ``message.refusal`` set.

``delay_seconds`` delays every reply (requests overlap, as with a real API).
``server.hold()`` keeps every reply back until ``server.release()``, and
``server.wait_for_requests(n)`` returns once ``n`` requests arrived: tests that need
requests in flight synchronise on these events, not on sleeps that a loaded machine
outruns.
``mangle(path, reply)``, when set, replaces every live 200 reply body before it is sent
(a reply the API's schema does not allow: null content, a list body, string usage...).
Replies carry ``usage`` as the real APIs do: input tokens = words of the prompt,
output tokens = words of the reply.

``server.requests`` records (path, parsed body, fault) of every request, faulted
ones included, so tests can check that the counts add up; ``server.replied``
records (path, parsed body) of every 200 reply written out in full (what a client
was sent, and so may have been billed).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import socket
import threading
import time
from collections import Counter, deque
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
        slow_seconds: float = 60.0,
        delay_seconds: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.judge = judge
        self.moderate = moderate
        self.guard = guard
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.delay_seconds = delay_seconds
        self.mangle: Callable[[str, dict[str, Any]], Any] | None = None
        self.replied: list[tuple[str, dict[str, Any]]] = []
        self.faults: deque[str] = deque()
        self.requests: list[tuple[str, dict[str, Any], str | None]] = []
        self.lock = threading.Lock()
        self._arrived = threading.Condition(self.lock)
        self._released = threading.Event()
        self._released.set()
        self._stopping = threading.Event()
        self.batch_polls = 1
        self.batch_fail_next = False  # the next OpenAI batch fails validation
        self.batch_faults: deque[str | None] = deque()
        self.batch_expire: deque[int | None] = deque()
        self.batch_items: list[tuple[str, dict[str, Any]]] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
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
        self._stopping.set()  # held and "slow" replies end now
        self._released.set()
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

    def next_batch_fault(self) -> str | None:
        with self.lock:
            return self.batch_faults.popleft() if self.batch_faults else None

    def record(self, path: str, body: dict[str, Any], fault: str | None) -> None:
        with self.lock:
            self.requests.append((path, body, fault))
            self._arrived.notify_all()

    def wait_for_requests(self, n: int, timeout: float = 60.0) -> int:
        """Block until ``n`` requests arrived (or ``timeout``); the number that did."""
        with self.lock:
            self._arrived.wait_for(lambda: len(self.requests) >= n, timeout)
            return len(self.requests)

    def hold(self) -> None:
        """Keep every live-call reply back (requests stay in flight) until `release`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

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

    def do_GET(self) -> None:  # noqa: N802
        self.fake.record(self.path, {}, None)
        if not self._authorised():
            self._error(401, "authentication_error", "invalid x-api-key")
            return
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if path.startswith("/v1/messages/batches/") and len(parts) == 4:
            b = self.fake.batches.get(parts[3])
            if b is None:
                return self._error(404, "not_found_error", "no such batch")
            self._json(200, self._batch_poll(b))
        elif path.startswith("/v1/messages/batches/") and parts[-1] == "results":
            b = self.fake.batches.get(parts[3])
            if b is None or not b["ended"]:
                return self._error(404, "not_found_error", "results not ready")
            body = "".join(json.dumps(line) + "\n" for line in b["lines"]).encode()
            self._send(200, body, {"content-type": "application/binary"})
        elif path.startswith("/v1/batches/") and len(parts) == 3:
            b = self.fake.batches.get(parts[2])
            if b is None:
                return self._error(404, "not_found", "no such batch")
            self._json(200, self._batch_poll(b))
        elif path.startswith("/v1/files/") and parts[-1] == "content":
            data = self.fake.files.get(parts[2])
            if data is None:
                return self._error(404, "not_found", "no such file")
            self._send(200, data, {"content-type": "application/octet-stream"})
        else:
            self._error(404, "not_found_error", f"no route {path}")

    # -- batches
    def _new_id(self, prefix: str) -> str:
        with self.fake.lock:
            return f"{prefix}{len(self.fake.batches) + len(self.fake.files) + 1:06d}"

    def _process(self, items: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, Any]]:
        """Items (custom_id, path, params) -> (custom_id, fault or reply) as a live call would."""
        with self.fake.lock:
            expire = self.fake.batch_expire.popleft() if self.fake.batch_expire else None
        out = []
        for i, (cid, path, params) in enumerate(items):
            with self.fake.lock:
                self.fake.batch_items.append((cid, params))
            if expire is not None and i >= expire:
                out.append((cid, "expired"))
                continue
            fault = self.fake.next_batch_fault()
            if fault == "canceled":
                out.append((cid, "canceled"))
            elif fault in ("error", "invalid"):
                out.append((cid, fault))
            else:
                out.append((cid, self._reply(params, fault, path)))
        return out

    def _create_anthropic_batch(self, body: dict[str, Any]) -> None:
        bid = self._new_id("msgbatch_")
        done = self._process(
            [(r["custom_id"], "/v1/messages", r["params"]) for r in body["requests"]]
        )
        lines = []
        for cid, r in done:
            if r in ("expired", "canceled"):
                result: dict[str, Any] = {"type": r}
            elif r in ("error", "invalid"):
                kind = "api_error" if r == "error" else "invalid_request_error"
                result = {
                    "type": "errored",
                    "error": {"type": "error", "error": {"type": kind, "message": f"injected {r}"}},
                }
            else:
                result = {"type": "succeeded", "message": r}
            lines.append({"custom_id": cid, "result": result})
        b = {"id": bid, "kind": "anthropic", "lines": lines, "polls": 0, "ended": False,
             "canceled": False, "created": time.time()}
        with self.fake.lock:
            self.fake.batches[bid] = b
        self._json(200, self._batch_view(b))

    def _create_openai_batch(self, body: dict[str, Any]) -> None:
        data = self.fake.files.get(body["input_file_id"])
        if data is None:
            return self._error(400, "invalid_request_error", "no such input file")
        reqs = [json.loads(x) for x in data.decode().splitlines() if x.strip()]
        for r in reqs:
            if r.get("url") != body["endpoint"] or r.get("method") != "POST":
                return self._error(400, "invalid_request_error", "url/method of a line")
        done = self._process([(r["custom_id"], r["url"], r["body"]) for r in reqs])
        bid = self._new_id("batch_")
        out, err = [], []
        if self.fake.batch_fail_next:
            # Validation failed: no output at all, the reason in ``errors``.
            self.fake.batch_fail_next = False
            b = {"id": bid, "kind": "openai", "endpoint": body["endpoint"], "failed": True,
                 "input_file_id": body["input_file_id"], "out": [], "err": [], "polls": 0,
                 "ended": False, "canceled": False, "created": time.time(), "expired": False}
            with self.fake.lock:
                self.fake.batches[bid] = b
            return self._json(200, self._batch_view(b))
        for cid, r in done:
            line: dict[str, Any] = {"id": f"batch_req_{cid[:8]}", "custom_id": cid}
            if r == "canceled":
                err.append({**line, "response": None, "error": {
                    "code": "batch_cancelled", "message": "The batch was cancelled."}})
            elif r == "expired":
                err.append({**line, "response": None, "error": {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion "
                    "window expired."}})
            elif r in ("error", "invalid"):
                status = 500 if r == "error" else 400
                kind = "server_error" if r == "error" else "invalid_request_error"
                err.append({**line, "error": None, "response": {
                    "status_code": status, "request_id": "req_fake",
                    "body": {"error": {"message": f"injected {r}", "type": kind}}}})
            else:
                out.append({**line, "error": None, "response": {
                    "status_code": 200, "request_id": "req_fake", "body": r}})
        b = {"id": bid, "kind": "openai", "endpoint": body["endpoint"],
             "input_file_id": body["input_file_id"], "out": out, "err": err, "polls": 0,
             "ended": False, "canceled": False, "created": time.time(),
             "expired": any(x.get("error") and x["error"]["code"] == "batch_expired" for x in err)}
        with self.fake.lock:
            self.fake.batches[bid] = b
        self._json(200, self._batch_view(b))

    def _batch_poll(self, b: dict[str, Any]) -> dict[str, Any]:
        with self.fake.lock:
            b["polls"] += 1
            if b["polls"] >= self.fake.batch_polls and not b["ended"]:
                b["ended"] = True
                if b["kind"] == "openai":
                    for name in ("out", "err"):
                        if b[name]:
                            fid = f"file-{name}-{b['id']}"
                            self.fake.files[fid] = "".join(
                                json.dumps(x) + "\n" for x in b[name]
                            ).encode()
                            b[f"{name}_file"] = fid
        return self._batch_view(b)

    def _batch_view(self, b: dict[str, Any]) -> dict[str, Any]:
        now = int(b["created"])
        if b["kind"] == "anthropic":
            counts = Counter(line["result"]["type"] for line in b["lines"]) if b["ended"] else {}
            return {
                "id": b["id"], "type": "message_batch",
                "processing_status": "ended" if b["ended"] else (
                    "canceling" if b["canceled"] else "in_progress"),
                "request_counts": {
                    "processing": 0 if b["ended"] else len(b["lines"]),
                    **{k: counts.get(k, 0) for k in ("succeeded", "errored", "canceled", "expired")},
                },
                "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z",
                "ended_at": "2026-01-01T01:00:00Z" if b["ended"] else None,
                "results_url": f"{self.fake.url}/v1/messages/batches/{b['id']}/results"
                if b["ended"] else None,
            }
        status = "in_progress"
        if b["ended"]:
            status = "cancelled" if b["canceled"] else "expired" if b["expired"] else "completed"
            if b.get("failed"):
                status = "failed"
        elif b["canceled"]:
            status = "cancelling"
        return {
            "id": b["id"], "object": "batch", "endpoint": b["endpoint"],
            "input_file_id": b["input_file_id"], "completion_window": "24h",
            "status": status, "created_at": now,
            "output_file_id": b.get("out_file"), "error_file_id": b.get("err_file"),
            "errors": {"object": "list", "data": [{"code": "invalid_json_line",
                                                    "message": "injected failure", "line": 1}]}
            if b.get("failed") else None,
            "request_counts": {"total": len(b["out"]) + len(b["err"]),
                               "completed": len(b["out"]) if b["ended"] else 0,
                               "failed": len(b["err"]) if b["ended"] else 0},
        }

    def _cancel_batch(self, bid: str) -> None:
        b = self.fake.batches.get(bid)
        if b is None:
            return self._error(404, "not_found_error", "no such batch")
        with self.fake.lock:
            b["canceled"] = True
        self._json(200, self._batch_view(b))

    def _upload(self, raw: bytes) -> None:
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"content-type: " + self.headers.get("content-type", "").encode() + b"\r\n\r\n" + raw
        )
        fields = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                  for p in msg.iter_parts()}
        if fields.get("purpose") != b"batch" or "file" not in fields:
            return self._error(400, "invalid_request_error", "purpose must be batch")
        fid = self._new_id("file-")
        with self.fake.lock:
            self.fake.files[fid] = fields["file"]
        self._json(200, {"id": fid, "object": "file", "bytes": len(fields["file"]),
                         "created_at": int(time.time()), "filename": "batch.jsonl",
                         "purpose": "batch", "status": "processed"})

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n)
        path = self.path.split("?")[0]
        if path == "/v1/files" or "batches" in path:
            # Batch control calls: no live-call faults, authentication as everywhere.
            body = {} if path == "/v1/files" else json.loads(raw or b"{}")
            self.fake.record(path, body, None)
            if not self._authorised():
                return self._error(401, "authentication_error", "invalid x-api-key")
            if path == "/v1/files":
                return self._upload(raw)
            if path == "/v1/messages/batches":
                return self._create_anthropic_batch(body)
            if path == "/v1/batches":
                return self._create_openai_batch(body)
            if path.endswith("/cancel"):
                return self._cancel_batch(path.strip("/").split("/")[-2])
            return self._error(404, "not_found_error", f"no route {path}")
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
            self.fake._stopping.wait(self.fake.slow_seconds)
        self.fake._released.wait()
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
        if self.fake.mangle is not None:
            reply = self.fake.mangle(self.path.split("?")[0], reply)
        payload = json.dumps(reply).encode()
        if fault == "malformed":
            payload = payload[: len(payload) // 2]
        if self._send(200, payload) and fault != "malformed":
            with self.fake.lock:
                self.fake.replied.append((self.path, body))

    def _reply(
        self, body: dict[str, Any], fault: str | None = None, path: str | None = None
    ) -> dict[str, Any] | None:
        path = path or self.path.split("?")[0]
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
