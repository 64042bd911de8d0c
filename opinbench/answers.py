"""Answer extraction: from a model's free text to one of the options, or invalid.

Shared by the chain-of-thought tasks (scoring), the judges (parsing a judge's
reply) and the GRPO rewards (training), so that all three agree on what counts
as an answer.

What is accepted, in this order (the first that applies decides):

1. ``<answer>...</answer>`` tags: the last tagged span. A last ``<answer>`` that
   is never closed runs to the end of the output (generation may stop at the
   ``</answer>`` stop sequence, which lm-eval cuts off).
2. An answer line, ``Answer: X`` (also ``Final answer``, ``**Answer:**``): the last
   one. An answer line with nothing after the colon takes the next non-empty line.
   Only when there is none: a line that starts ``The answer is X`` (also ``So the
   final answer is: X``), the last one. Small models often end that way; it is a
   lower tier so that an explicit ``Answer:`` followed by commentary ("The answer
   is "Either" because ...") keeps its answer.
3. The whole output is a bare letter: ``B``, ``(B)``, ``B.``, ``b)``.
4. The whole output, its last line, or the text after a closing
   ``</reasoning>`` tag is the text of an option (case and white space ignored),
   with or without its letter (``B. Oppose``), or a bare letter.

Inside the chosen span, ``X`` may be a letter, ``(B)``, ``B. text`` or an
option's text, optionally after a repeated ``Answer:``; a short phrase that
names exactly one option ("I choose Oppose", "No, not at all") counts, unless a
negation comes before it ("not Yes"). A span that starts with an option followed by a
comma (or ``;`` ``:`` ``.`` a dash) and an explanation is that option ("No, the thesis is
not a neutral one"), unless the explanation offers another option ("Yes, or No",
"Yes, but really No"); an option named after a negation there does not count. Option texts are matched case- and space-insensitively, and a
final "s" is ignored on words of five letters or more ("Support" = "Supports").
A span naming two different options ("A or B", "Yes/No") is ambiguous.
Anything else, an empty output included, is invalid: the result has
``answer=None`` and a reason, which the tasks count and score as wrong.
Letters mentioned in the reasoning never count.

>>> extract_answer("B. Opposes", ["Supports", "Opposes", "Either"]).letter
'B'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LETTERS", "Extraction", "answer_start", "extract_answer"]

LETTERS = "ABCDEFGHIJ"

# The last tagged span; the body may not contain another opening tag, so a
# mention of "<answer>" in the reasoning does not swallow the real answer.
# Used by opinbench.judging.samples to cut the answer off the reasoning.
_TAG = re.compile(r"<answer>\s*((?:(?!<answer>).)*?)\s*(?:</answer>|\Z)", re.I | re.S)
_ANSWER_LINE = re.compile(
    r"(?:^|\n)[ \t>*_#-]*(?:final\s+)?answer[ \t*_]*[:：][ \t*_]*(?P<x>[^\n]*)", re.I
)
_ANSWER_IS = re.compile(
    r"(?:^|\n)[ \t>*_#-]*(?:(?:so|thus|therefore|hence)[ \t]*,?[ \t]+)?the[ \t]+(?:final[ \t]+|correct[ \t]+|best[ \t]+)?"
    r"answer[ \t]+is[ \t*_]*[:：]?[ \t*_]*(?P<x>[^\n]*)",
    re.I,
)
_BARE_LETTER = re.compile(r"^[\s*_]*\(?\s*(?P<l>[A-J])\s*[).:]?[\s*_]*$", re.I)
_LETTER_PREFIX = re.compile(r"^\(?(?P<l>[A-J])(?:[).:]|\s*$|\s+(?=\S)|(?=\s*[/,&]))", re.I)
_REPEATED_MARKER = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is\s*)?[:：]?\s*", re.I)
_MORE_LETTERS = re.compile(r"^\s*(?:,|/|&|\bor\b|\band\b)\s*\(?[A-J]\)?(?!\w)", re.I)
_REASONING_CLOSE = re.compile(r"</reasoning>", re.I)
_NEGATION = re.compile(r"(?<!\w)(?:not|never|n't|cannot|neither|nor)(?!\w)", re.I)
_EXTRA_CHARS = 30
"""How much longer than the option a phrase naming one option may be ("I choose Oppose")."""


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
    return re.sub(r"\s+", " ", text).strip().strip("*_`\"'").strip().rstrip(".!").strip().casefold()


def _loose(norm: str) -> str:
    """A normalised text with the final "s" of long words dropped ("supports" -> "support")."""
    return " ".join(w[:-1] if len(w) >= 5 and w.endswith("s") else w for w in norm.split(" "))


def _exact_option(text: str, options: Sequence[str]) -> int | None:
    """Index of the option ``text`` is (case, space, final-s tolerant), else None."""
    n = _norm(text)
    for i, o in enumerate(options):
        if _norm(o) == n:
            return i
    loose = _loose(n)
    hits = [i for i, o in enumerate(options) if _loose(_norm(o)) == loose]
    return hits[0] if len(hits) == 1 else None


def _option_pattern(option: str) -> str:
    """Regex for an option's text as whole words in a `_norm`-ed text (final "s" optional)."""
    words = []
    for w in _norm(option).split(" "):
        stem = w[:-1] if len(w) >= 5 and w.endswith("s") else w
        words.append(re.escape(stem) + ("s?" if len(stem) >= 4 else ""))
    return r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)"


def _leading_option(text: str, options: Sequence[str]) -> int | None:
    """The option ``text`` starts with (longest first), e.g. "Oppose, because ..." -> Opposes."""
    body = _norm(re.sub(r"^[\s).:,\-\u2013\u2014]+", "", text))
    for i in sorted(range(len(options)), key=lambda j: -len(options[j])):
        if re.match(_option_pattern(options[i]), body):
            return i
    return None


def _mentions(span: str, options: Sequence[str]) -> tuple[set[int], str]:
    """Options named in ``span`` as whole words (longest match wins), and the text
    before the first mention (to look for a negation of it)."""
    text = _norm(span)
    covered = [False] * len(text)
    hits: set[int] = set()
    for i in sorted(range(len(options)), key=lambda j: -len(options[j])):
        for m in re.finditer(_option_pattern(options[i]), text):
            if not any(covered[m.start() : m.end()]):
                hits.add(i)
                covered[m.start() : m.end()] = [True] * (m.end() - m.start())
    first = covered.index(True) if any(covered) else len(text)
    return hits, text[:first]


_EXPLANATION = re.compile(r"\s*(?:[,;:.]|\s[-\u2013\u2014])\s*(?P<rest>\S.*)$", re.S)
_ALTERNATIVE = re.compile(r"^(?:or|and|/|&)(?!\w)", re.I)


def _option_then_explanation(span: str, options: Sequence[str]) -> int | None:
    """The option a span starts with when an explanation follows it: "No, the thesis is
    not a neutral one" -> No. Not when the explanation is an alternative ("Yes, or No",
    "Yes, No") or names another option without a negation before it ("Yes, but really No")."""
    body = _norm(span)
    for i in sorted(range(len(options)), key=lambda j: -len(options[j])):
        m = re.match(_option_pattern(options[i]) + _EXPLANATION.pattern, body, re.S)
        if not m:
            continue
        rest = m.group("rest")
        if _ALTERNATIVE.match(rest):
            return None
        for j, other in enumerate(options):
            if j == i:
                continue
            for hit in re.finditer(_option_pattern(other), rest):
                if not _NEGATION.search(rest[: hit.start()]):
                    return None
        return i
    return None


def _resolve(span: str, options: Sequence[str], letters: str) -> tuple[int | None, str]:
    """Index of the option a short span names, or (None, reason)."""
    span = span.strip().strip("*_`").strip()
    span = _REPEATED_MARKER.sub("", span, count=1).strip().strip("*_`").strip()
    if not span:
        return None, "empty answer"
    whole = _exact_option(span, options)
    if whole is not None:
        return whole, ""
    m = _LETTER_PREFIX.match(span)
    lead = _leading_option(span, options)
    if m and lead is not None and _norm(options[lead])[:2] == m.group("l").casefold() + " ":
        return lead, ""  # "A great deal, ..." is an option's text that starts like a letter
    if m:
        letter = m.group("l").upper()
        i = letters.find(letter)
        rest = span[m.end() :]
        # "I think B": the pronoun, not a letter.
        pronoun = letter == "I" and span[:2] == "I " and bool(re.match(r"[a-z']", rest))
        if not pronoun:
            if not 0 <= i < len(options):
                return None, f"letter {letter} is not an option"
            # "B or C", "B/C", "B, C": more than one letter.
            if _MORE_LETTERS.match(rest):
                return None, "more than one option"
            # "B. Oppose" must agree with option B; "B. Oppose, because ..." is B.
            j = _leading_option(rest, options)
            if j is not None and j != i:
                return None, "letter and option text disagree"
            return i, ""
    lead_i = _option_then_explanation(span, options)
    if lead_i is not None:
        return lead_i, ""
    hits, before = _mentions(span, options)
    if len(hits) > 1:
        return None, "more than one option"
    if len(hits) == 1:
        (i,) = hits
        # the span names exactly one option and says little else ("I choose Oppose")
        if _NEGATION.search(before):
            return None, f"negated option: {span[:40]!r}"
        if len(_norm(span)) <= len(_norm(options[i])) + _EXTRA_CHARS:
            return i, ""
    return None, f"not an option: {span[:40]!r}"


def _plain_candidates(text: str) -> list[str]:
    """Spans that may be a bare option, without any answer marker (rule 4)."""
    stripped = text.strip()
    out = [stripped]
    after = _REASONING_CLOSE.split(stripped)
    if len(after) > 1 and after[-1].strip():
        out.append(after[-1].strip())
    last = stripped.splitlines()[-1].strip()
    if last:
        out.append(last)
    return list(dict.fromkeys(out))


def _plain_option(span: str, options: Sequence[str], letters: str) -> int | None:
    """Only an exact option, optionally lettered ("B. Oppose"), or a bare letter counts."""
    if _BARE_LETTER.match(span):
        i = letters.find(_BARE_LETTER.match(span).group("l").upper())  # type: ignore[union-attr]
        return i if 0 <= i < len(options) else None
    i = _exact_option(span, options)
    if i is not None:
        return i
    m = _LETTER_PREFIX.match(span)
    if m:
        j = _exact_option(span[m.end() :], options)
        if j is not None and letters.find(m.group("l").upper()) == j:
            return j
    return None


def answer_start(text: str | None) -> int | None:
    """Where the final answer that `extract_answer` reads begins, for cutting it off the reasoning.

    The start of the last ``<answer>`` tag, else of the last answer line (either tier),
    else None (no marker: the answer, if any, is a bare letter or option text).

    >>> t = "It helps.\\nThe answer is: A"
    >>> t[: answer_start(t)].strip()
    'It helps.'
    """
    if not text:
        return None
    starts = [m.start() for m in re.finditer(r"<answer>", text, re.I)]
    if starts and _TAG.search(text):
        return starts[-1]
    lines = list(_ANSWER_LINE.finditer(text)) or list(_ANSWER_IS.finditer(text))
    if lines:
        m = lines[-1]
        return m.start() + (1 if text[m.start()] == "\n" else 0)
    return None


def extract_answer(text: str | None, options: Sequence[str], letters: str = LETTERS) -> Extraction:
    """Parse ``text`` into one of ``options``; see the module docstring.

    Args:
        text: the model output (None and "" are invalid).
        options: the option texts, in letter order.
        letters: the letters of the options (the first ``len(options)`` are used).

    Returns:
        `Extraction` with the option text and its letter, or ``answer=None`` and
        ``how="invalid: <reason>"``.

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
    tags = _TAG.findall(text)
    if tags:
        i, why = _resolve(tags[-1], options, letters)
        return Extraction(None, None, f"invalid: {why}") if i is None else Extraction(options[i], letters[i], "tag")
    lines = list(_ANSWER_LINE.finditer(text)) or list(_ANSWER_IS.finditer(text))
    if lines:
        last = lines[-1]
        span = last.group("x")
        if not span.strip().strip("*_`").strip():
            following = [ln for ln in text[last.end() :].splitlines() if ln.strip()]
            span = following[0] if following else ""
        i, why = _resolve(span, options, letters)
        if i is None:
            return Extraction(None, None, f"invalid: {why}")
        return Extraction(options[i], letters[i], "answer_line")
    stripped = text.strip()
    if _BARE_LETTER.match(stripped):
        i = letters.find(_BARE_LETTER.match(stripped).group("l").upper())  # type: ignore[union-attr]
        if 0 <= i < len(options):
            return Extraction(options[i], letters[i], "bare_letter")
        return Extraction(None, None, f"invalid: letter {stripped.strip('()*_. ').upper()} is not an option")
    for span in _plain_candidates(text):
        i = _plain_option(span, options, letters)
        if i is not None:
            return Extraction(options[i], letters[i], "option_text")
    return Extraction(None, None, "invalid: no answer found")


def extract_doc_answer(doc: Mapping[str, Any], text: str | None) -> Extraction:
    """`extract_answer` with a task document's ``options`` and ``letters``: the one parse that
    the tasks score, judges cut reasoning at, rewards pay for and `compare` re-reads.

    >>> extract_doc_answer({"options": ["Yes", "No"], "letters": ["A", "B"]}, "Answer: B").answer
    'No'
    """
    return extract_answer(text, doc["options"], "".join(doc["letters"]))
