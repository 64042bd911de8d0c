"""The LLM-client floor: ask a model many things, safely, once.

Shared by the judges (`opinbench.judging`) and STaR rationales
(`opinbench.train.rationales`); it knows nothing about either::

    errors.py     LLMError, AuthError (stops a run), RequestError (one request; retryable or not)
    providers.py  PROVIDER:MODEL specs and requests; anthropic / openai / OpenAI-compatible /
                  local transformers, through the real client libraries
    replies.py    Reply: text, stop reason, refusal, token usage (empty vs refused)
    cache.py      sqlite reply cache, write-through, keyed by endpoint and request; safe for
                  several processes (per-key claims, a stored reply is never overwritten)
    jobs.py       what both runners share: Job, Outcome, RunOptions, Budget, RunStats,
                  the cache-first step and the retry delay
    runner.py     cache first, bounded concurrency, retries with Retry-After, request and
                  token budgets, Ctrl-C that keeps replies in flight, progress bar
    batch_runner.py  the same over the providers' batch APIs (batches.py)

Importable without the API clients: they are imported when a provider first
sends a request.
"""

from opinbench.llm.cache import ReplyCache, default_cache_path, request_key
from opinbench.llm.errors import AuthError, LLMError, RequestError
from opinbench.llm.jobs import Budget, Job, Outcome, RunOptions, RunStats
from opinbench.llm.providers import ChatRequest, Provider, ProviderSpec, make_provider
from opinbench.llm.replies import Reply
from opinbench.llm.runner import run_jobs

__all__ = [
    "AuthError",
    "Budget",
    "ChatRequest",
    "Job",
    "LLMError",
    "Outcome",
    "Provider",
    "ProviderSpec",
    "Reply",
    "ReplyCache",
    "RequestError",
    "RunOptions",
    "RunStats",
    "default_cache_path",
    "make_provider",
    "request_key",
    "run_jobs",
]
