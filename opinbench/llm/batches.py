"""The Anthropic Message Batches API and the OpenAI Batch API, behind one small interface.

A batch is submitted once, processed by the provider within 24 hours at half the
price of live calls and without rate limits, then read back as one result per
request, matched by ``custom_id`` (here: the request's cache key). This module only
speaks the two wire protocols through the real SDKs (``client.messages.batches``;
``client.files`` + ``client.batches``); `opinbench.llm.batch_runner` adds the
cache, the resume after a crash, retries of failed items and the budget.

Each item's parameters are built by the same provider methods as a live call
(`AnthropicProvider.params`, `OpenAIProvider.params` / ``moderation_params``) and its
reply is parsed by the same ones (``anthropic_reply``, ``reply``,
``moderation_result``), so a batch answer and a live answer to one request are the
same `Reply` and share one cache key.

Result kinds (`ItemResult.kind`), after the two APIs' own:

* ``succeeded``: a reply (``reply``; a moderation's result dict for OpenAI moderations);
* ``errored``: the request failed (``error``: a `RequestError`, retryable or not as a
  live call's would be: an overloaded or 5xx error is, an invalid request is not);
* ``canceled`` / ``expired``: never processed (the batch was cancelled, or its 24 h
  window ran out): worth sending again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opinbench.errors import ConfigError
from opinbench.llm.errors import RequestError
from opinbench.llm.providers import (
    RETRYABLE_STATUS,
    AnthropicProvider,
    ChatRequest,
    OpenAIProvider,
    Provider,
    classify_error,
)
from opinbench.llm.replies import Reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchStatus:
    """Where a submitted batch is: ``ended`` once its results can be read."""

    batch_id: str
    status: str
    ended: bool


@dataclass(frozen=True)
class ItemResult:
    """One request's fate in an ended batch (see the module docstring for ``kind``)."""

    custom_id: str
    kind: str
    reply: Reply | None = None
    error: RequestError | None = None


class BatchAPI:
    """One provider's batch endpoint: submit, poll, read results, cancel."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.spec = provider.spec

    @property
    def endpoint(self) -> str:
        """Names where batches go, for the cache's record of open batches."""
        ident = self.spec.identity()
        return f"{ident['provider']}|{ident['model']}|{ident['base_url'] or ''}"

    def submit(self, items: Sequence[tuple[str, dict[str, Any]]]) -> str:
        """Send ``(custom_id, request JSON)`` items (all of one ``kind``) as one batch; its id."""
        raise NotImplementedError

    def status(self, batch_id: str) -> BatchStatus:
        raise NotImplementedError

    def results(self, batch_id: str) -> Iterator[ItemResult]:
        """The results of an ended batch (any order)."""
        raise NotImplementedError

    def cancel(self, batch_id: str) -> None:
        raise NotImplementedError

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A client call with its errors mapped as a live call's (`classify_error`)."""
        client = self.provider.client()
        try:
            return fn(client)(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 (mapped, never swallowed)
            raise classify_error(err, self.spec, getattr(client, "api_key", None)) from None


def _error_of(spec: Any, status: int | None, kind: str, message: str) -> RequestError:
    retryable = kind in {"api_error", "overloaded_error", "rate_limit_error", "server_error", "malformed"} or (
        status is not None and (status in RETRYABLE_STATUS or status >= 500)
    )
    return RequestError(
        f"{spec}: batch item {kind}" + (f" (HTTP {status})" if status else "") + f": {message[:200]}",
        kind=f"batch {kind}",
        retryable=retryable,
        status=status,
    )


class AnthropicBatches(BatchAPI):
    """``POST /v1/messages/batches`` with ``{custom_id, params}`` items; results as JSONL."""

    provider: AnthropicProvider

    def submit(self, items: Sequence[tuple[str, dict[str, Any]]]) -> str:
        requests = []
        for cid, rj in items:
            if rj.get("kind") != "chat":
                raise ConfigError(f"{self.spec}: Anthropic batches hold chat requests only")
            requests.append({"custom_id": cid, "params": self.provider.params(ChatRequest.from_json(rj))})
        batch = self._call(lambda c: c.messages.batches.create, requests=requests)
        return str(batch.id)

    def status(self, batch_id: str) -> BatchStatus:
        b = self._call(lambda c: c.messages.batches.retrieve, batch_id)
        return BatchStatus(batch_id, b.processing_status, b.processing_status == "ended")

    def results(self, batch_id: str) -> Iterator[ItemResult]:
        from opinbench.llm.providers import anthropic_reply

        for line in self._call(lambda c: c.messages.batches.results, batch_id):
            r = line.result
            if r.type == "succeeded":
                yield ItemResult(line.custom_id, "succeeded", reply=anthropic_reply(r.message))
            elif r.type == "errored":
                inner = getattr(r.error, "error", None)
                kind = str(getattr(inner, "type", "api_error"))
                yield ItemResult(
                    line.custom_id,
                    "errored",
                    error=_error_of(self.spec, None, kind, str(getattr(inner, "message", ""))),
                )
            else:  # canceled / expired
                yield ItemResult(line.custom_id, r.type)

    def cancel(self, batch_id: str) -> None:
        self._call(lambda c: c.messages.batches.cancel, batch_id)


class OpenAIBatches(BatchAPI):
    """A JSONL file of ``{custom_id, method, url, body}`` lines (``files.create``, purpose
    ``batch``), a batch over it (``batches.create``), results from its output and error files."""

    provider: OpenAIProvider
    _ENDED = frozenset({"completed", "failed", "expired", "cancelled"})

    def submit(self, items: Sequence[tuple[str, dict[str, Any]]]) -> str:
        kinds = {rj.get("kind") for _, rj in items}
        if len(kinds) != 1:
            raise ValueError(f"one batch holds one kind of request, not {sorted(map(str, kinds))}")
        url = "/v1/moderations" if kinds == {"moderation"} else "/v1/chat/completions"
        lines = []
        for cid, rj in items:
            body = (
                self.provider.moderation_params(rj["input"])
                if rj["kind"] == "moderation"
                else self.provider.params(ChatRequest.from_json(rj))
            )
            lines.append(json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": body}))
        data = ("\n".join(lines) + "\n").encode()
        f = self._call(lambda c: c.files.create, file=("opinbench_batch.jsonl", data), purpose="batch")
        batch = self._call(
            lambda c: c.batches.create,
            input_file_id=f.id,
            endpoint=url,
            completion_window="24h",
            metadata={"kind": str(kinds.pop())},
        )
        return str(batch.id)

    def status(self, batch_id: str) -> BatchStatus:
        b = self._call(lambda c: c.batches.retrieve, batch_id)
        return BatchStatus(batch_id, b.status, b.status in self._ENDED)

    def results(self, batch_id: str) -> Iterator[ItemResult]:
        import openai

        b = self._call(lambda c: c.batches.retrieve, batch_id)
        moderation = b.endpoint == "/v1/moderations"
        seen = False
        for file_id in (b.output_file_id, b.error_file_id):
            if not file_id:
                continue
            text = self._call(lambda c: c.files.content, file_id).text
            for raw in text.splitlines():
                if not raw.strip():
                    continue
                seen = True
                line = json.loads(raw)
                yield self._item(line, moderation, openai)
        if not seen and b.status == "failed":
            # The whole batch was refused (validation): say why, item by item.
            errs = getattr(getattr(b, "errors", None), "data", None) or []
            why = "; ".join(f"{e.code}: {e.message}" for e in errs) or "batch failed"
            raise RequestError(
                f"{self.spec}: batch {batch_id} failed: {why}", kind="batch failed", retryable=False
            )

    def _item(self, line: dict[str, Any], moderation: bool, openai: Any) -> ItemResult:
        cid = str(line.get("custom_id"))
        err = line.get("error")
        resp = line.get("response") or {}
        if err:
            code = str(err.get("code") or "error")
            if code == "batch_expired":
                return ItemResult(cid, "expired")
            if code == "batch_cancelled":
                return ItemResult(cid, "canceled")
            return ItemResult(cid, "errored", error=_error_of(self.spec, None, code, str(err.get("message", ""))))
        status = int(resp.get("status_code") or 0)
        body = resp.get("body") or {}
        if status != 200:
            inner = body.get("error") or {}
            kind = str(inner.get("type") or inner.get("code") or f"http {status}")
            return ItemResult(cid, "errored", error=_error_of(self.spec, status, kind, str(inner.get("message", ""))))
        try:
            if moderation:
                result = self.provider.moderation_result(
                    openai.types.ModerationCreateResponse.model_validate(body)
                )
                return ItemResult(cid, "succeeded", reply=Reply(result))
            completion = openai.types.chat.ChatCompletion.model_validate(body)
            return ItemResult(cid, "succeeded", reply=self.provider.reply(completion))
        except RequestError as e:
            return ItemResult(cid, "errored", error=e)
        except ValueError as e:  # pydantic: a body that is not the API's shape
            return ItemResult(cid, "errored", error=_error_of(self.spec, None, "malformed", str(e)))

    def cancel(self, batch_id: str) -> None:
        self._call(lambda c: c.batches.cancel, batch_id)


def batch_api(provider: Provider) -> BatchAPI:
    """The batch endpoint of ``provider``; a `ConfigError` where there is none."""
    if isinstance(provider, AnthropicProvider):
        return AnthropicBatches(provider)
    if isinstance(provider, OpenAIProvider) and provider.spec.provider == "openai":
        return OpenAIBatches(provider)
    raise ConfigError(
        f"{provider.spec}: batch mode needs the Anthropic or OpenAI API "
        "(anthropic:MODEL or openai:MODEL); use --mode live for this provider"
    )
