"""What can go wrong when a model is asked: the errors the runner acts on.

`RequestError` is one failed request (retried when ``retryable``); `AuthError`
and any other `LLMError` mean no other request can succeed either, so a run
stops at once.
"""

from __future__ import annotations

from opinbench.errors import OpinbenchError


class LLMError(OpinbenchError):
    """A model provider could not be used (a judge, a moderator, a rationale writer)."""


class AuthError(LLMError):
    """The API key is missing or was rejected: nothing else can succeed, so the run stops."""


class RequestError(LLMError):
    """One request failed.

    Attributes:
        kind: short label for counting (``http 429``, ``timeout``, ``connection``, ``malformed``).
        retryable: whether sending it again may succeed.
        status: the HTTP status, if there was one.
        retry_after: seconds the server asked to wait, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
