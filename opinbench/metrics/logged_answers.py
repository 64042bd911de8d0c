"""The answers of one answer-task document (``*_cot``, ``*_direct``), read back from its lm-eval samples row.

The one reader that ``opinbench compare`` and ``opinbench regress`` share: both
recompute answers from what ``--log_samples`` saved, never from the logged metrics.

* a CoT row (``resps`` holds text): every generation (repeats included) parsed
  with `opinbench.answers.extract_doc_answer`, the parse the task scored;
  None where a generation names no single option;
* a direct row (``resps`` holds ``(loglikelihood, is_greedy)`` pairs, or no
  ``resps``): the option of the most probable letter (`opinbench.metrics.letters`).

A row is one line of a samples file as `opinbench.runs.read_rows` parses it
(``doc``, ``resps``, ``filtered_resps``, ...); the document's gold answer is
its own ``gold_label`` / ``answer``.
"""

from __future__ import annotations

from typing import Any

from opinbench.answers import extract_doc_answer
from opinbench.metrics.letters import is_finite, predicted_answer, probabilities
from opinbench.runs import generations


def logged_loglikelihoods(row: dict[str, Any]) -> list[float]:
    """The logged loglikelihoods of a multiple-choice row, one per choice, as floats.

    lm-eval writes ``filtered_resps`` as ``[[ll, is_greedy], ...]`` and ``resps`` as
    ``[[[ll, is_greedy]], ...]``, the numbers as strings.

    >>> logged_loglikelihoods({"filtered_resps": [["-0.5", "True"], ["-2.0", "False"]]})
    [-0.5, -2.0]
    >>> logged_loglikelihoods({"resps": [[["-0.5", "True"]], [["-2.0", "False"]]]})
    [-0.5, -2.0]
    """
    out = []
    for r in row.get("filtered_resps") or row.get("resps") or []:
        x = r[0] if isinstance(r, list) and r and isinstance(r[0], list) else r  # resps: [[ll, greedy]]
        x = x[0] if isinstance(x, list) else x
        out.append(float(x))
    return out


def logged_answers(doc: dict[str, Any], row: dict[str, Any]) -> list[str | None]:
    """The predicted option texts of one logged document: one per generation (CoT), or the
    most probable letter's option (direct); None = no valid answer, as for a direct document
    whose loglikelihoods are not all finite (the task scores it invalid too).

    >>> doc = {"options": ["Yes", "No"], "letters": ["A", "B"]}
    >>> logged_answers(doc, {"resps": [["Reasons.\\nAnswer: B", "Hmm."]]})
    ['No', None]
    >>> logged_answers(doc, {"filtered_resps": [["-3.0", "False"], ["-0.1", "True"], ["-4.0", "False"], ["-2.0", "False"]]})
    ['No']
    >>> logged_answers(doc, {"filtered_resps": [["nan", "False"], ["-0.1", "True"], ["-4.0", "False"], ["-2.0", "False"]]})
    [None]

    Raises:
        ValueError, KeyError, TypeError: a row that is neither (wrong number of loglikelihoods,
            a document without ``options``/``letters``).
    """
    resps = row.get("resps")
    texts = generations(resps) if resps else None  # no responses: read as a direct document
    if texts is not None:
        return [extract_doc_answer(doc, t).answer for t in texts]
    probs = probabilities(doc, logged_loglikelihoods(row))
    return [predicted_answer(doc, probs) if is_finite(probs) else None]
