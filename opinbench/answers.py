"""Answer extraction: from a model's free text to one of the options, or invalid.

Shared by the chain-of-thought tasks (scoring), the judges (parsing a judge's
reply) and the GRPO rewards (training), so that all three agree on what counts
as an answer.

What is accepted, in this order (the first that applies decides):

1. ``<answer>...</answer>`` tags: the last tagged span.
2. An answer line, ``Answer: X`` (also ``Final answer``, ``**Answer:**``): the last one.
3. The whole output is a bare letter: ``B``, ``(B)``, ``B.``, ``b)``.
4. The whole output, or its last line, is the text of an option (case and
   white space ignored), with or without its letter (``B. Oppose``).

Inside the chosen span, ``X`` may be a letter, ``(B)``, ``B. text`` or an
option's text. A span naming two different options ("A or B") is ambiguous.
Anything else, an empty output included, is invalid: the result has
``answer=None`` and a reason, which the tasks count and score as wrong.
Letters mentioned in the reasoning never count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

LETTERS = "ABCDEFGHIJ"

_TAG = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.I | re.S)
_ANSWER_LINE = re.compile(
    r"(?:^|\n)[ \t>*_#-]*(?:final\s+)?answer[ \t*_]*[:：][ \t*_]*(?P<x>[^\n]*)", re.I
)
_BARE_LETTER = re.compile(r"^[\s*_]*\(?\s*(?P<l>[A-J])\s*[).:]?[\s*_]*$", re.I)
_LETTER_PREFIX = re.compile(r"^\(?(?P<l>[A-J])(?:[).:]|\s*$|\s+(?=\S))", re.I)


@dataclass(frozen=True)
class Extraction:
    """The parsed answer: option text and letter, or None with the reason."""

    answer: str | None
    letter: str | None
    how: str  # "tag", "answer_line", "bare_letter", "option_text" or "invalid: ..."

    @property
    def valid(self) -> bool:
        return self.answer is not None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().strip("*_`\"'").strip().rstrip(".").strip().casefold()


def _resolve(span: str, options: Sequence[str], letters: str) -> tuple[int | None, str]:
    """Index of the option a short span names, or (None, reason)."""
    span = span.strip().strip("*_`").strip()
    if not span:
        return None, "empty answer"
    by_text = {_norm(o): i for i, o in enumerate(options)}
    whole = by_text.get(_norm(span))
    if whole is not None:
        return whole, ""
    m = _LETTER_PREFIX.match(span)
    if m:
        letter = m.group("l").upper()
        i = letters.find(letter)
        rest = _norm(span[m.end() :])
        if i < 0 or i >= len(options):
            return None, f"letter {letter} is not an option"
        # "B. Oppose" must agree with option B; "B or C" is ambiguous.
        if rest and rest != _norm(options[i]):
            others = {j for j, o in enumerate(options) if j != i and _norm(o) in rest.split(" or ")}
            if re.search(r"\b(or|and)\b", rest) or others:
                return None, "more than one option"
            if rest in by_text and by_text[rest] != i:
                return None, "letter and option text disagree"
        return i, ""
    hits = {i for i, o in enumerate(options) if re.search(rf"(?<!\w){re.escape(_norm(o))}(?!\w)", _norm(span))}
    if len(hits) == 1:
        # the span contains exactly one option text and says little else ("I choose Oppose")
        (i,) = hits
        if len(_norm(span)) <= len(_norm(options[i])) + 20:
            return i, ""
    if len(hits) > 1:
        return None, "more than one option"
    return None, f"not an option: {span[:40]!r}"


def extract_answer(text: str | None, options: Sequence[str], letters: str = LETTERS) -> Extraction:
    """Parse ``text`` into one of ``options``; see the module docstring.

    >>> extract_answer("Reasoning...\\nAnswer: (b)", ["Yes", "No"]).answer
    'No'
    >>> extract_answer("<reasoning>x</reasoning><answer>Neutral</answer>", ["Yes", "Neutral", "No"]).answer
    'Neutral'
    >>> extract_answer("I think A is tempting.", ["Yes", "No"]).how
    'invalid: no answer found'
    """
    if text is None or not text.strip():
        return Extraction(None, None, "invalid: empty output")
    letters = letters[: len(options)]
    candidates: list[tuple[str, str]] = []
    tags = _TAG.findall(text)
    if tags:
        candidates.append(("tag", tags[-1]))
    else:
        lines = list(_ANSWER_LINE.finditer(text))
        if lines:
            candidates.append(("answer_line", lines[-1].group("x")))
        else:
            stripped = text.strip()
            if _BARE_LETTER.match(stripped):
                candidates.append(("bare_letter", stripped))
            else:
                candidates.append(("option_text", stripped))
                last = stripped.splitlines()[-1]
                if last != stripped:
                    candidates.append(("option_text", last))
    reason = "no answer found"
    for how, span in candidates:
        if how == "option_text":
            # Without a marker, only an exact option (optionally lettered) counts.
            m = _LETTER_PREFIX.match(span.strip())
            body = span.strip()[m.end() :] if m else span
            by_text = {_norm(o): i for i, o in enumerate(options)}
            i = by_text.get(_norm(body))
            if i is None or (m and letters.find(m.group("l").upper()) != i):
                continue
        else:
            i, why = _resolve(span, options, letters)
            if i is None:
                return Extraction(None, None, f"invalid: {why}")
        return Extraction(options[i], letters[i], how)
    return Extraction(None, None, f"invalid: {reason}")
