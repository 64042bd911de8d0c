"""What the live runner and the batch runner share: jobs, outcomes, options, the budget, counts.

`opinbench.llm.runner` (live requests) and `opinbench.llm.batch_runner` (batch APIs)
both take `Job`s and return ``{key: Outcome}`` and `RunStats`, charge one `Budget`,
read the cache first (`from_cache`), and wait between retries the same way
(`retry_delay`). These live here, below both, so that neither runner imports the other's
private names.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from opinbench.llm.cache import ReplyCache
from opinbench.llm.errors import RequestError
from opinbench.llm.replies import Reply


@dataclass(frozen=True)
class Job:
    """One request to make (or to find in the cache).

    Attributes:
        key: the cache key (`opinbench.llm.cache.request_key`).
        request: the request as JSON, stored beside the reply for auditing.
        call: sends the request and returns a `Reply` (or a plain JSON-serialisable value).
    """

    key: str
    request: dict[str, Any]
    call: Callable[[], Any]


@dataclass(frozen=True)
class Outcome:
    """What became of one distinct request.

    Attributes:
        reply: the reply (None unless ``status`` is ``sent`` or ``cached``).
        status: ``sent`` (answered now), ``cached`` (from the cache, filled by an
            earlier run or by another one meanwhile), ``failed`` (gave up) or
            ``skipped`` (budget exhausted, or the run was stopped).
        attempts: HTTP attempts made in this run.
        error: why it failed or was skipped.
        error_kind: the last error's kind (``http 429``, ``timeout``, ``empty``, ``budget``...).
        refused: the reply is a refusal the provider signalled (`opinbench.llm.replies`).
        stop_reason: the API's stop / finish reason, when known.
    """

    reply: Any
    status: str
    attempts: int = 0
    error: str | None = None
    error_kind: str | None = None
    refused: bool = False
    stop_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("sent", "cached")


@dataclass
class RunOptions:
    """How to send: concurrency, retries, backoff, progress bar."""

    concurrency: int = 4
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_after: float = 300.0
    progress: bool = True
    max_empty_retries: int = 2
    claim_poll: float = 0.25  # seconds between looks at a key another process is sending
    # Batch mode (`opinbench.llm.batch_runner`): a `opinbench.llm.batches.BatchAPI`, or None (live).
    batch: Any = None
    batch_size: int = 10_000  # requests per batch (the APIs take up to 50,000 / 100,000)
    poll_interval: float = 30.0  # seconds between looks at a submitted batch


class Budget:
    """Thread-safe caps on HTTP attempts and on tokens, shared by every batch of one command.

    Args:
        max_requests: HTTP attempts, retries included (None: no cap).
        max_tokens: input + output tokens as the API reports them (None: no cap).
    """

    def __init__(self, max_requests: int | None = None, max_tokens: int | None = None) -> None:
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.used = 0  # HTTP attempts
        self.input_tokens = 0
        self.output_tokens = 0
        self.unmetered = 0  # replies without usage: their tokens are not counted
        self.unmeasured = False  # a reply without usage came under a token cap: the cap is spent
        self._lock = threading.Lock()

    def _out_by(self) -> str | None:
        if self.max_requests is not None and self.used >= self.max_requests:
            return "requests"
        if self.max_tokens is not None and (
            self.unmeasured or self.input_tokens + self.output_tokens >= self.max_tokens
        ):
            return "tokens"
        return None

    def take(self) -> bool:
        """Charge one HTTP attempt; False (nothing charged) once a budget is spent."""
        with self._lock:
            if self._out_by() is not None:
                return False
            self.used += 1
            return True

    def spend(self, reply: Reply) -> None:
        """Charge a reply's tokens.

        A chat reply (text) without usable usage (none, or negative counts) under a token
        cap spends the cap: what it cost is unknown, and sending on could spend any amount.
        (Estimating tokens from the text instead would let a server that never reports usage
        run through the whole budget unchecked on a guess.) A moderation endpoint's result
        (a JSON object) is not billed by tokens and leaves the cap as it is.
        """
        with self._lock:
            if reply.metered:
                self.input_tokens += reply.input_tokens or 0
                self.output_tokens += reply.output_tokens or 0
            else:
                self.unmetered += 1
                if self.max_tokens is not None and isinstance(reply.value, str):
                    self.unmeasured = True

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return self._out_by() is not None

    @property
    def exhausted_by(self) -> str | None:
        """``requests``, ``tokens`` or None."""
        with self._lock:
            return self._out_by()

    def why_skipped(self) -> str:
        if self.exhausted_by == "tokens":
            if self.unmeasured:
                return (
                    f"token budget cannot be kept (--max-tokens-budget {self.max_tokens}): "
                    "the server sent a reply without token usage"
                )
            return f"token budget exhausted (--max-tokens-budget {self.max_tokens})"
        return f"request budget exhausted (--max-requests {self.max_requests})"

    def spent(self) -> dict[str, Any]:
        """What the command used, and its caps: for the results file."""
        with self._lock:
            return {
                "requests": self.used,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "tokens": self.input_tokens + self.output_tokens,
                "replies_without_usage": self.unmetered,
                "max_requests": self.max_requests,
                "max_tokens_budget": self.max_tokens,
                "exhausted_by": self._out_by(),
            }


@dataclass
class RunStats:
    """Counts for the progress bar and the results file.

    ``items`` = all jobs; ``unique`` = distinct keys = ``sent + cached + failed +
    skipped``; ``deduplicated`` = ``items - unique``; ``requests`` = HTTP attempts;
    ``retried`` = attempts that were retries; ``errors`` = error kinds seen (every
    failed attempt, retried or not). ``refused``: distinct requests answered by a
    refusal (sent or cached); ``empty``: empty replies received (each one an
    attempt); ``input_tokens`` / ``output_tokens``: the usage of the replies received
    in this run, ``unmetered`` of them came without usage; ``waited``: keys another
    process was sending when this run wanted them.
    """

    items: int = 0
    unique: int = 0
    deduplicated: int = 0
    sent: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    requests: int = 0
    retried: int = 0
    refused: int = 0
    empty: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unmetered: int = 0
    waited: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, other: RunStats) -> None:
        for name in (
            "items",
            "unique",
            "deduplicated",
            "sent",
            "cached",
            "failed",
            "skipped",
            "requests",
            "retried",
            "refused",
            "empty",
            "input_tokens",
            "output_tokens",
            "unmetered",
            "waited",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.update(other.errors)

    def count_reply(self, reply: Reply) -> None:
        """Add a received reply's usage (or count it as unmetered)."""
        if reply.metered:
            self.input_tokens += reply.input_tokens or 0
            self.output_tokens += reply.output_tokens or 0
        else:
            self.unmetered += 1

    def tally(self, out: Outcome) -> None:
        """Count one distinct request's final outcome."""
        name = out.status if out.status in ("sent", "cached", "failed") else "skipped"
        setattr(self, name, getattr(self, name) + 1)
        self.refused += out.refused

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = dict(self.errors)
        return d

    def summary(self) -> str:
        return (
            f"{self.unique} distinct requests: {self.sent} sent, {self.cached} cached, "
            f"{self.failed} failed, {self.skipped} skipped; {self.requests} HTTP attempts "
            f"({self.retried} retries); tokens {self.input_tokens} in, {self.output_tokens} out"
            + (f" ({self.unmetered} replies without usage)" if self.unmetered else "")
            + (f"; {self.refused} refused" if self.refused else "")
            + (f"; {self.empty} empty replies" if self.empty else "")
            + (f"; errors: {dict(self.errors)}" if self.errors else "")
        )


def stored_outcome(entry: Any) -> Outcome:
    """A cache hit as an outcome (its metadata says whether it was a refusal)."""
    meta = entry.meta or {}
    return Outcome(
        entry.reply, "cached", refused=bool(meta.get("refused")), stop_reason=meta.get("stop_reason")
    )


def from_cache(
    jobs: Sequence[Job], cache: ReplyCache
) -> tuple[dict[str, Job], RunStats, dict[str, Outcome], list[Job]]:
    """Jobs deduplicated by key, the stats so far, the outcomes the cache already holds, and
    the jobs still to send (the first step of live and batch runs alike)."""
    unique: dict[str, Job] = {}
    for job in jobs:
        unique.setdefault(job.key, job)
    stats = RunStats(items=len(jobs), unique=len(unique), deduplicated=len(jobs) - len(unique))
    outcomes: dict[str, Outcome] = {}
    pending: list[Job] = []
    for key, job in unique.items():
        entry = cache.entry(key)
        if entry is not None:
            outcomes[key] = stored_outcome(entry)
            stats.cached += 1
            stats.refused += outcomes[key].refused
        else:
            pending.append(job)
    return unique, stats, outcomes, pending


def retry_delay(err: RequestError, n: int, options: RunOptions) -> float:
    """Seconds to wait before retry ``n`` (1-based): the server's Retry-After (capped), else
    exponential backoff with jitter, so that workers do not retry in lockstep."""
    if err.retry_after is not None:
        return min(err.retry_after, options.max_retry_after)
    return min(options.max_backoff, options.backoff * 2 ** (n - 1)) * random.uniform(0.5, 1.0)
