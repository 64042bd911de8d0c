"""Model providers (judges, moderators, STaR rationale writers), through the real client libraries.

A provider is named ``PROVIDER:MODEL``:

==================  ==========================================================
``anthropic:M``      Claude via ``anthropic.Anthropic().messages.create``.
``openai:M``         ``openai.OpenAI().chat.completions.create``; as a moderator,
                     the moderation endpoint (``moderations.create``).
``openai-compat:M``  any OpenAI-compatible server (vLLM, llama.cpp, ...) at
                     ``--base-url``; chat completions only (``vllm:M`` is an alias).
``local:M``          a transformers model on this machine: ``local:smollm2``
                     (``opinbench.models``) or ``local:/path/to/hf/folder``.
==================  ==========================================================

Keys come from the environment only: ``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``,
or the variable named by ``--api-key-env``. They are handed to the client and
nowhere else: not to the cache key, the results, the logs or error messages
(server messages are redacted before they are shown).

Retries: the clients' own retries are switched off (``max_retries=0``) and
`opinbench.llm.runner` retries instead. The SDKs could retry (they honour
``Retry-After`` too), but only per call and out of our sight: they would not
hold back the other workers while a rate limit lasts, could not charge each
attempt to the ``--max-requests`` budget, count it in the results or show it
in the progress bar; and the two layers together would multiply the attempts
(``(1 + sdk) * (1 + ours)``). So one layer decides, ours. Errors are mapped to
`RequestError` (``retryable`` for 408/409/429/5xx/529, timeouts, dropped
connections and malformed JSON, with the server's ``Retry-After``) or
`AuthError` (missing key, 401/403), which stops the whole run.

Sampling: Anthropic API version 2026-10-21 (SDK 2.x) rejects ``temperature``,
``top_p`` and ``top_k`` with HTTP 400, and the SDK no longer accepts them; so the
Anthropic provider never sends a temperature, and reproducibility of a rerun
rests on the cache. The OpenAI providers send it when it is not ``None``.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opinbench.errors import ConfigError
from opinbench.llm.errors import AuthError, LLMError, RequestError
from opinbench.llm.replies import REFUSAL_STOP_REASONS, Reply, malformed, text_of, usage_count

log = logging.getLogger(__name__)

PROVIDERS = ("anthropic", "openai", "openai-compat", "local")
_ALIASES = {"vllm": "openai-compat", "openai_compat": "openai-compat", "hf": "local"}
DEFAULT_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
# Where the clients themselves look for a base URL when none is passed.
_BASE_URL_ENV = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every secret replaced by ``***`` (short strings are left alone)."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def _strip_userinfo(url: str | None) -> str | None:
    """A URL without ``user:password@``, fit for a results file."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


@dataclass(frozen=True)
class ProviderSpec:
    """Which endpoint and model answer; parsed from ``PROVIDER:MODEL``.

    Attributes:
        provider: one of `PROVIDERS`.
        model: model name, or for ``local`` a packaged name or a folder.
        base_url: endpoint; required for ``openai-compat``.
        api_key_env: the environment variable holding the key (default per provider).
        timeout: seconds per request before the client gives up (then retried).
    """

    provider: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    timeout: float = 60.0

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 60.0,
    ) -> ProviderSpec:
        """``anthropic:claude-sonnet-4-6`` -> ProviderSpec; a clear error otherwise.

        >>> ProviderSpec.parse("vllm:meta-llama/Llama-Guard-3-1B", base_url="http://h:8000/v1").provider
        'openai-compat'
        """
        provider, sep, model = text.partition(":")
        provider = _ALIASES.get(provider.strip().lower(), provider.strip().lower())
        if not sep or not model.strip() or provider not in PROVIDERS:
            raise ConfigError(
                f"bad judge {text!r}: expected PROVIDER:MODEL with PROVIDER one of "
                f"{', '.join(PROVIDERS)} "
                "(e.g. anthropic:claude-sonnet-4-6, openai:gpt-4o-mini, "
                "openai-compat:MODEL --base-url URL, "
                "local:smollm2)"
            )
        if provider == "openai-compat" and not base_url:
            raise ConfigError(
                f"{text}: an OpenAI-compatible server needs --base-url (e.g. http://localhost:8000/v1)"
            )
        if provider == "local" and base_url:
            raise ConfigError(f"{text}: --base-url does not apply to a local model")
        return cls(provider, model.strip(), base_url or None, api_key_env or None, timeout)

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"

    @property
    def key_env(self) -> str | None:
        """The environment variable the key is read from (None: no key needed)."""
        return self.api_key_env or DEFAULT_KEY_ENV.get(self.provider)

    def has_key(self) -> bool:
        env = self.key_env
        return env is None or bool(os.environ.get(env))

    def effective_base_url(self) -> str | None:
        """The endpoint requests go to (as the client resolves it), without credentials."""
        url = self.base_url or os.environ.get(_BASE_URL_ENV.get(self.provider, ""), "") or None
        return _strip_userinfo(url)

    def identity(self) -> dict[str, Any]:
        """What the cache key and the results record about the endpoint: never the key."""
        return {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.effective_base_url(),
        }


@dataclass(frozen=True)
class ChatRequest:
    """One chat prompt and the settings that can change its reply.

    Attributes:
        messages: ``(role, content)`` turns, ``user`` first.
        system: a system prompt, or None.
        max_tokens: reply length cap.
        temperature: sampling temperature; None = not sent (the server's default).
        prefill: local models only: the start of the reply, written for the model
            (``"Answer:"``), so that a small model answers instead of rambling; it
            is part of the returned reply.
    """

    messages: tuple[tuple[str, str], ...]
    system: str | None = None
    max_tokens: int = 64
    temperature: float | None = 0.0
    prefill: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChatRequest:
        """The request `to_json` wrote (a batch builds its items from the jobs' JSON).

        >>> r = ChatRequest((("user", "Hi"),), system="S", max_tokens=8)
        >>> ChatRequest.from_json(r.to_json()) == r
        True
        """
        return cls(
            messages=tuple((str(r), str(c)) for r, c in d["messages"]),
            system=d.get("system"),
            max_tokens=int(d.get("max_tokens", 64)),
            temperature=d.get("temperature"),
            prefill=d.get("prefill"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "chat",
            "messages": [list(m) for m in self.messages],
            "system": self.system,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.prefill:
            out["prefill"] = self.prefill
        return out


def moderation_request_json(text: str) -> dict[str, Any]:
    return {"kind": "moderation", "input": text}


# --------------------------------------------------------------------------- errors


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _server_message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(err, "message", "") or err)


def classify_error(err: BaseException, spec: ProviderSpec, key: str | None) -> LLMError:
    """Map an ``anthropic``/``openai`` exception to `AuthError` or `RequestError`.

    Both libraries (Stainless-generated) share the same class names, so one
    mapping by name and attributes serves both.
    """
    names = {c.__name__ for c in type(err).__mro__}
    status = getattr(err, "status_code", None)
    msg = redact(_server_message(err), key)[:300]
    if status in (401, 403) or "AuthenticationError" in names or "PermissionDeniedError" in names:
        return AuthError(
            f"{spec}: the API key from ${spec.key_env or '(none)'} was rejected "
            f"(HTTP {status}: {msg}); "
            "check the key, or pass --api-key-env VAR"
        )
    if "APITimeoutError" in names:
        return RequestError(
            f"{spec}: request timed out after {spec.timeout:g} s", kind="timeout", retryable=True
        )
    if "APIConnectionError" in names:
        return RequestError(f"{spec}: connection failed ({msg})", kind="connection", retryable=True)
    if status == 404:
        # Every request would fail the same way: stop rather than fail item by item.
        return LLMError(
            f"{spec}: HTTP 404: {msg} (unknown model, or a --base-url without the right path?)"
        )
    if status is not None:
        response = getattr(err, "response", None)
        return RequestError(
            f"{spec}: HTTP {status}: {msg}",
            kind=f"http {status}",
            retryable=status in RETRYABLE_STATUS or status >= 500,
            status=status,
            retry_after=_retry_after(getattr(response, "headers", None)),
        )
    if isinstance(err, ValueError) or "APIResponseValidationError" in names:
        # A 200 whose body is not the JSON the client expects (truncated by a proxy, ...).
        return RequestError(
            f"{spec}: malformed reply ({redact(str(err), key)[:120]})",
            kind="malformed",
            retryable=True,
        )
    return RequestError(
        f"{spec}: {type(err).__name__}: {redact(str(err), key)[:200]}",
        kind=type(err).__name__,
        retryable=False,
    )


# --------------------------------------------------------------------------- providers


@dataclass
class Provider:
    """Base class: sends one request, returns the reply or raises a `LLMError`.

    Clients are built on first use, so a run answered entirely from the cache
    needs neither a key nor a network (nor, for ``local``, loading the model).
    """

    spec: ProviderSpec
    # Requests that may be in flight at once (None: whatever --concurrency says).
    max_concurrency: int | None = None
    _client: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def chat(self, request: ChatRequest) -> str:
        """The reply's text only (see `complete` for its stop reason and token counts)."""
        return str(self.complete(request).value)

    def complete(self, request: ChatRequest) -> Reply:
        """The reply text, with stop reason, refusal signal and the API's token usage."""
        raise LLMError(f"{self.spec}: cannot answer a chat prompt")

    def moderate(self, text: str) -> dict[str, Any]:
        raise LLMError(
            f"{self.spec}: has no moderation endpoint; use a chat moderator (Llama Guard)"
        )

    @property
    def has_moderation_endpoint(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        """For a results file's config: provider, model, endpoint, key variable NAME."""
        return {
            **self.spec.identity(),
            "api_key_env": self.spec.key_env,
            "timeout_s": self.spec.timeout,
        }

    def _key(self) -> str | None:
        env = self.spec.key_env
        if env is None:
            return None
        key = os.environ.get(env)
        if not key:
            raise AuthError(
                f"{self.spec}: no API key: set ${env}"
                + (
                    ""
                    if self.spec.api_key_env
                    else " (or name another variable with --api-key-env)"
                )
                + ", or use an offline judge such as local:smollm2"
            )
        return key

    def client(self) -> Any:
        """The client library's client, built on first use (batch mode drives it directly)."""
        return self._get()  # type: ignore[attr-defined]

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            client.close()


def _client_library(name: str) -> Any:
    """Import a provider's client library, with the install command when it is missing."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        raise ConfigError(f"the {name} provider needs the {name!r} package: pip install 'opinbench[judges]'") from None


class AnthropicProvider(Provider):
    def _get(self) -> Any:
        with self._lock:
            if self._client is None:
                anthropic = _client_library("anthropic")

                self._client = anthropic.Anthropic(
                    api_key=self._key(),
                    base_url=self.spec.base_url,
                    max_retries=0,  # our runner retries, once, for every provider: see above
                    timeout=self.spec.timeout,
                )
            return self._client

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "temperature_sent": False}

    def params(self, request: ChatRequest) -> dict[str, Any]:
        """The Messages API parameters of ``request`` (a live call's and a batch item's)."""
        return anthropic_params(self.spec.model, request)

    def complete(self, request: ChatRequest) -> Reply:
        client = self._get()
        try:
            msg = client.messages.create(**self.params(request))
        except Exception as err:  # noqa: BLE001 (mapped, never swallowed)
            raise classify_error(err, self.spec, client.api_key) from None
        return anthropic_reply(msg)


def anthropic_params(model: str, request: ChatRequest) -> dict[str, Any]:
    """Messages API parameters; the system prompt (the judge's fixed instructions) is marked
    for prompt caching (``cache_control``), which the API ignores below its minimum length."""
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": [{"role": r, "content": c} for r, c in request.messages],
    }
    if request.system:
        params["system"] = [
            {"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}
        ]
    return params


def anthropic_reply(msg: Any) -> Reply:
    """A Messages API reply (live or a batch's ``succeeded`` result) as a `Reply`.

    Input tokens include the ones read from or written to the prompt cache (the API
    reports them apart): the token budget counts every token sent.
    """
    content = getattr(msg, "content", None)
    if not isinstance(content, list):
        raise malformed(f"Messages content is {type(content).__name__}, not a list of blocks")
    text = "".join(
        text_of(getattr(b, "text", None), "a text block")
        for b in content
        if getattr(b, "type", "") == "text"
    )
    usage = getattr(msg, "usage", None)
    n_in = usage_count(getattr(usage, "input_tokens", None), "input_tokens")
    if n_in is not None:
        for name in ("cache_read_input_tokens", "cache_creation_input_tokens"):
            n_in += usage_count(getattr(usage, name, None), name) or 0
    stop_reason = getattr(msg, "stop_reason", None)
    return Reply(
        text,
        stop_reason=stop_reason,
        refused=stop_reason in REFUSAL_STOP_REASONS,
        input_tokens=n_in,
        output_tokens=usage_count(getattr(usage, "output_tokens", None), "output_tokens"),
    )


class OpenAIProvider(Provider):
    @property
    def has_moderation_endpoint(self) -> bool:
        return self.spec.provider == "openai"

    def _get(self) -> Any:
        with self._lock:
            if self._client is None:
                openai = _client_library("openai")

                key = self._key()
                if key is None:
                    # OpenAI-compatible servers often need no key, but the client insists on one.
                    key = "EMPTY"
                self._client = openai.OpenAI(
                    api_key=key,
                    base_url=self.spec.base_url,
                    max_retries=0,  # our runner retries, once, for every provider: see above
                    timeout=self.spec.timeout,
                )
            return self._client

    def params(self, request: ChatRequest) -> dict[str, Any]:
        """The Chat Completions parameters of ``request`` (a live call's and a batch item's)."""
        messages = ([{"role": "system", "content": request.system}] if request.system else []) + [
            {"role": r, "content": c} for r, c in request.messages
        ]
        params: dict[str, Any] = {"model": self.spec.model, "messages": messages}
        if request.temperature is not None:
            params["temperature"] = request.temperature
        # OpenAI's own newer models take max_completion_tokens only; servers that
        # imitate the API (vLLM) all understand max_tokens.
        if self.spec.provider == "openai":
            params["max_completion_tokens"] = request.max_tokens
        else:
            params["max_tokens"] = request.max_tokens
        return params

    def complete(self, request: ChatRequest) -> Reply:
        client = self._get()
        try:
            resp = client.chat.completions.create(**self.params(request))
        except Exception as err:  # noqa: BLE001
            raise classify_error(err, self.spec, client.api_key) from None
        return self.reply(resp)

    def reply(self, resp: Any) -> Reply:
        """A Chat Completions reply (live or a batch's output line) as a `Reply`."""
        choices = getattr(resp, "choices", None)
        if not isinstance(choices, list):
            raise malformed(f"{self.spec}: Chat Completions body without a choices list")
        if not choices:
            raise RequestError(
                f"{self.spec}: reply without choices", kind="malformed", retryable=True
            )
        message = getattr(choices[0], "message", None)
        if message is None:
            raise malformed(f"{self.spec}: a choice without a message")
        # A refusal comes as message.refusal (its text) and/or finish_reason "content_filter".
        refusal = text_of(getattr(message, "refusal", None), "message.refusal")
        finish = getattr(choices[0], "finish_reason", None)
        usage = getattr(resp, "usage", None)
        return Reply(
            text_of(getattr(message, "content", None), "message.content") or refusal,
            stop_reason=finish,
            refused=bool(refusal) or finish in REFUSAL_STOP_REASONS,
            input_tokens=usage_count(getattr(usage, "prompt_tokens", None), "prompt_tokens"),
            output_tokens=usage_count(
                getattr(usage, "completion_tokens", None), "completion_tokens"
            ),
        )

    def moderate(self, text: str) -> dict[str, Any]:
        """``{"flagged", "categories": {name: bool}, "category_scores": {name: float}}``.

        Categories are kept exactly as the API names them (``self-harm/intent``,
        ``violence/graphic``, ...); ones the API left out (null) are dropped.
        """
        if not self.has_moderation_endpoint:
            return super().moderate(text)
        client = self._get()
        try:
            resp = client.moderations.create(**self.moderation_params(text))
        except Exception as err:  # noqa: BLE001
            raise classify_error(err, self.spec, client.api_key) from None
        return self.moderation_result(resp)

    def moderation_params(self, text: str) -> dict[str, Any]:
        return {"model": self.spec.model, "input": text}

    def moderation_result(self, resp: Any) -> dict[str, Any]:
        """A Moderations reply (live or a batch's output line) as the cached result dict."""
        if not resp.results:
            raise RequestError(
                f"{self.spec}: moderation reply without results", kind="malformed", retryable=True
            )
        r = resp.results[0]

        def plain(obj: Any) -> dict[str, Any]:
            d = obj.model_dump(by_alias=True) if hasattr(obj, "model_dump") else dict(obj or {})
            return {k: v for k, v in d.items() if v is not None}

        return {
            "flagged": bool(r.flagged),
            "categories": {k: bool(v) for k, v in plain(r.categories).items()},
            "category_scores": {k: float(v) for k, v in plain(r.category_scores).items()},
        }


class LocalProvider(Provider):
    """A transformers causal LM on this machine, greedy when temperature is 0.

    One request at a time (``max_concurrency=1``): a CPU model gains nothing
    from threads, and ``generate`` is not meant to be called concurrently.
    """

    def __init__(self, spec: ProviderSpec) -> None:
        super().__init__(spec, max_concurrency=1)
        self._tok: Any = None

    def _get(self) -> tuple[Any, Any]:
        with self._lock:
            if self._client is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                from opinbench.models import resolve

                path = resolve(self.spec.model)
                if not os.path.isdir(path):
                    raise ConfigError(
                        f"{self.spec}: not a packaged model name nor a folder: {path}"
                    )
                log.info("loading local judge %s", path)
                try:
                    self._tok = AutoTokenizer.from_pretrained(path)
                    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
                except (OSError, ValueError) as err:
                    raise ConfigError(
                        f"{self.spec}: cannot load a causal LM from {path}: {err}"
                    ) from err
                model.eval()
                self._client = model
            return self._client, self._tok

    def complete(self, request: ChatRequest) -> Reply:
        import torch

        model, tok = self._get()
        turns = ([("system", request.system)] if request.system else []) + list(request.messages)
        prefill = request.prefill or ""
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(
                [{"role": r, "content": c} for r, c in turns],
                add_generation_prompt=True,
                tokenize=False,
            )
        else:
            text = "\n\n".join(c for _, c in turns) + "\n"
        # The chat template already holds the special tokens: do not add them twice.
        enc = tok(text + prefill, return_tensors="pt", add_special_tokens=False)
        gen: dict[str, Any] = {"max_new_tokens": request.max_tokens}
        if request.temperature:
            gen.update(do_sample=True, temperature=request.temperature)
        else:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if tok.pad_token_id is None:
            gen["pad_token_id"] = tok.eos_token_id
        with self._lock, torch.no_grad():
            out = model.generate(**enc, **gen)
        n_in = int(enc["input_ids"].shape[1])
        new = out[0, n_in:]
        reply = tok.decode(new, skip_special_tokens=True)
        hit_eos = tok.eos_token_id is not None and bool((new == tok.eos_token_id).any())
        return Reply(
            (prefill + reply).strip(),
            stop_reason="stop" if hit_eos or len(new) < request.max_tokens else "length",
            input_tokens=n_in,
            output_tokens=int(len(new)),
        )


def make_provider(spec: ProviderSpec) -> Provider:
    if spec.provider == "anthropic":
        return AnthropicProvider(spec)
    if spec.provider in ("openai", "openai-compat"):
        return OpenAIProvider(spec)
    return LocalProvider(spec)
