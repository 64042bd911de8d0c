"""What a model sent back, beside its text: why it stopped, whether it refused, what it cost.

A provider's `complete` returns a `Reply`; the runner stores ``value`` in the
cache (the text of a chat reply, the result dict of a moderation) and the rest
as the row's metadata, and tells three kinds of answer apart:

* a **refusal**: the provider says the model declined: Anthropic's
  ``stop_reason: "refusal"``, OpenAI's ``finish_reason: "content_filter"`` or a
  ``message.refusal``. A real answer, paid for and cached, counted as refused, not
  retried (it would most likely refuse again). A model that declines in prose
  without such a signal is not recognised here: the judge's answer parser records
  that reply as invalid, with its reason.
* an **empty** reply: no text at all (or whitespace) and no refusal signal. Retried
  a bounded number of times, then failed with the reason "empty": never cached
  as a success.
* otherwise an answer.

Token counts are the API's own ``usage`` (Anthropic ``input_tokens`` /
``output_tokens``, OpenAI ``prompt_tokens`` / ``completion_tokens``; a local model:
its tokenizer's counts); ``None`` when the server sent none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opinbench.llm.errors import RequestError

REFUSAL_STOP_REASONS = frozenset({"refusal", "content_filter"})


@dataclass(frozen=True)
class Reply:
    """One reply: the value to cache, and what the API said about it.

    Attributes:
        value: the chat text, or any JSON value (a moderation result).
        stop_reason: Anthropic ``stop_reason`` / OpenAI ``finish_reason``.
        refused: the provider signalled a refusal (see the module docstring).
        input_tokens, output_tokens: the API's usage, None when not reported.
    """

    value: Any
    stop_reason: str | None = None
    refused: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def empty(self) -> bool:
        """No text and no refusal: nothing to use, worth asking again."""
        return isinstance(self.value, str) and not self.value.strip() and not self.refused

    @property
    def metered(self) -> bool:
        """The API reported usage, and none of it negative (a negative count is no count)."""
        counts = (self.input_tokens, self.output_tokens)
        return any(c is not None for c in counts) and all(c is None or c >= 0 for c in counts)

    def meta(self) -> dict[str, Any]:
        """What the cache keeps beside the value (so that a cache hit is still a refusal)."""
        return {
            "stop_reason": self.stop_reason,
            "refused": self.refused,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }

    @classmethod
    def of(cls, result: Any) -> Reply:
        """A call's result as a Reply (a plain value: no metadata, e.g. a test's fake)."""
        return result if isinstance(result, Reply) else cls(result)


def malformed(what: str) -> RequestError:
    """A reply the API's own schema does not allow (a null content, a number as text, a list
    as the body, a string as a token count): one failed request, not retried (the same server
    would most likely send the same again), and one line in the log, not a traceback."""
    return RequestError(f"malformed reply: {what}", kind="malformed reply", retryable=False)


def usage_count(value: Any, name: str) -> int | None:
    """A token count of a reply's ``usage``: None when absent; a non-integer is malformed.

    A negative count is kept as sent: `Reply.metered` says it is no count.

    >>> usage_count(None, "input_tokens") is None, usage_count(-1, "input_tokens")
    (True, -1)
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(f"usage {name} is {value!r}, not an integer")
    return value


def text_of(value: Any, what: str) -> str:
    """A reply's text; anything but a string (or None: no text) is malformed."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise malformed(f"{what} is {type(value).__name__}, not text")
    return value
