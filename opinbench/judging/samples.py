"""Read chain-of-thought samples from lm-eval ``--log_samples`` output.

lm-eval writes ``<output_path>/<model>/samples_<task>_<timestamp>.jsonl``, one JSON
object per document with ``doc_id, doc, target, arguments, resps, filtered_resps,
metrics, doc_hash, prompt_hash``. For opinbench's CoT tasks ``resps`` is
``[[generation, ...]]`` (several generations with ``repeats``) and ``doc`` carries
``id, dataset, family, question, options, subject, subject_group, answer, context``.

Each generation becomes one `CotSample`. The model's own answer is
``opinbench.answers.extract_answer(generation, options)``, the same parse the
tasks score with; its reasoning is the generation with that final answer
removed (`split_reasoning`).

``subject``, ``subject_group`` and ``context`` are kept on the sample for the
verdict file but no judge template receives them: the judge must recover the
answer from the reasoning alone.
"""

from __future__ import annotations

import logging
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The tag and answer-line patterns are answers.py's own, so that "the final answer"
# removed here is exactly the span extract_answer parsed.
from opinbench.answers import LETTERS, Extraction, answer_start, extract_answer
from opinbench.data import registry
from opinbench.errors import DataError, SkipLog
from opinbench.runs import find_runs, generations, parse_samples_name, read_rows

log = logging.getLogger(__name__)

_REASONING_TAG = re.compile(r"<reasoning>(.*?)(?:</reasoning>|\Z)", re.I | re.S)
_CONTRACT = ("question", "options")


@dataclass(frozen=True)
class CotSample:
    """One generation of one document of one CoT task.

    Attributes:
        task: lm-eval task name (from the file name, else the file stem).
        doc_id: lm-eval's ``doc_id``.
        repeat: index of the generation among the document's repeats.
        doc: the document as logged (persona fields included; judges never see them).
        family: ``vk`` or ``survey``: which judge template applies.
        question: question, thesis or situation text.
        options: the option texts, in letter order.
        generation: the raw model output.
        model_answer: the parse of the model's final answer.
        reasoning: the generation without its final answer ("" if there is none).
        doc_hash: lm-eval's ``doc_hash``, to join verdicts back to samples.
        source: the samples file.
    """

    task: str
    doc_id: Any
    repeat: int
    doc: dict[str, Any]
    family: str
    question: str
    options: tuple[str, ...]
    generation: str
    model_answer: Extraction
    reasoning: str
    doc_hash: str | None
    source: Path

    @property
    def run_dir(self) -> Path:
        """The lm-eval run folder (where results are written beside the run)."""
        return self.source.parent

    def verdict_head(self) -> dict[str, Any]:
        """The fields every judge's verdict on this sample starts with (how it joins back)."""
        return {"type": "sample", "task": self.task, "doc_id": self.doc_id,
                "repeat": self.repeat, "doc_hash": self.doc_hash}

    @property
    def item_id(self) -> str:
        return f"{self.task}/{self.doc_id}/{self.repeat}"


def split_reasoning(text: str | None, how: str | None = None) -> str:
    """The reasoning part of a CoT generation: everything but the final answer.

    In order: the text inside the last ``<reasoning>...</reasoning>`` (an unclosed
    tag runs to the end); else the text before the last ``<answer>`` tag; else the
    text before the last ``Answer:`` line; else, when the answer was an option's
    text on the last line (``how == "option_text"``), the lines before it; when the
    whole output was the answer (a bare letter or option), there is no reasoning.
    Otherwise (no answer found) the whole output is reasoning, which is what a
    moderator should read.

    >>> split_reasoning("<reasoning>It helps.</reasoning>\\n<answer>A</answer>")
    'It helps.'
    >>> split_reasoning("It helps people.\\nAnswer: A")
    'It helps people.'
    >>> split_reasoning("B", how="bare_letter")
    ''
    """
    if not text:
        return ""
    tags = _REASONING_TAG.findall(text)
    if tags:
        return tags[-1].strip()
    start = answer_start(text)  # where extract_answer found the final answer
    if start is not None:
        return text[:start].strip()
    if how == "bare_letter":
        return ""
    if how == "option_text":
        stripped = text.strip()
        head, _, _ = stripped.rpartition("\n")
        return head.strip()
    return text.strip()


def find_samples_files(path: str | Path) -> list[Path]:
    """The samples files to judge: the file itself, or the newest file per task of
    every lm-eval run folder under a folder (`opinbench.runs.find_runs`: every
    model's folder is kept).

    Raises:
        DataError: the path does not exist, or a folder holds no samples file.
    """
    return sorted(f for run in find_runs(path) for f in run.samples_files.values())


def _family(doc: dict[str, Any]) -> str:
    """The judge template family: the document's own, else its data set's (`registry.family_of`)."""
    fam = doc.get("family")
    return str(fam) if fam in registry.FAMILIES else registry.family_of(doc.get("dataset"))


def read_samples_file(path: Path, *, skips: SkipLog | None = None) -> list[CotSample]:
    """All generations of one samples file; lines that break the contract are skipped.

    A file whose documents are not CoT documents (no ``question``/``options``, or
    loglikelihood responses) is not an error: it is some other task of the same
    run, and is left out with one log line.
    """
    skips = skips if skips is not None else SkipLog()
    task, _ = parse_samples_name(path)
    out: list[CotSample] = []
    seen: set[str] = set()
    for row in read_rows(path, skips=skips):
        n, key = row.line, row.key
        doc = row.data.get("doc") if isinstance(row.data, dict) else None
        gens = generations(row.data.get("resps")) if isinstance(row.data, dict) else None
        if not isinstance(doc, dict) or gens is None or any(k not in doc for k in _CONTRACT):
            if not out and n == 1:
                log.info(
                    "%s: not a chain-of-thought task (no doc.question/options or no text), skipped",
                    path.name,
                )
                return []
            skips.skip(
                DataError("not a CoT sample (doc.question/options, text resps)", file=path, key=key)
            )
            continue
        options = doc["options"]
        if (
            not isinstance(options, list)
            or not 2 <= len(options) <= len(LETTERS)
            or not all(isinstance(o, str) for o in options)
        ):
            skips.skip(
                DataError(
                    f"options must be a list of 2 to {len(LETTERS)} strings",
                    file=path,
                    key=key,
                    field="doc.options",
                )
            )
            continue
        doc_id = row.data.get("doc_id", n - 1)
        if str(doc_id) in seen:
            # lm-eval logs every document once per filter (strict-match, flexible, ...)
            # with the same raw resps; judging it again would double-count it.
            skips.note(f"{path.name}: document logged again under another filter, judged once")
            continue
        seen.add(str(doc_id))
        for r, gen in enumerate(gens):
            ext = extract_answer(gen, options)
            out.append(
                CotSample(
                    task=task,
                    doc_id=doc_id,
                    repeat=r,
                    doc=doc,
                    family=_family(doc),
                    question=str(doc["question"]),
                    options=tuple(options),
                    generation=gen,
                    model_answer=ext,
                    reasoning=split_reasoning(gen, ext.how),
                    doc_hash=row.data.get("doc_hash"),
                    source=path,
                )
            )
    return out


def select(samples: Sequence[CotSample], limit: int | None, seed: int) -> list[CotSample]:
    """At most ``limit`` documents per task (all their repeats), drawn with ``seed``.

    Drawing documents, not generations, keeps repeats together so the clustered
    standard error stays meaningful. The draw per task depends only on the seed
    and the task's doc ids, so adding a task does not change another's draw.
    """
    if limit is None:
        return list(samples)
    by_task: dict[str, dict[Any, None]] = defaultdict(dict)
    for s in samples:
        by_task[s.task][s.doc_id] = None
    keep: set[tuple[str, str]] = set()
    for task, ids in by_task.items():
        ids = sorted(ids, key=str)
        random.Random(f"{seed}:{task}").shuffle(ids)
        keep.update((task, str(i)) for i in ids[:limit])
    return [s for s in samples if (s.task, str(s.doc_id)) in keep]


def load_samples(
    paths: Iterable[str | Path],
    *,
    limit: int | None = None,
    seed: int = 0,
    skips: SkipLog | None = None,
) -> list[CotSample]:
    """Every CoT generation under ``paths`` (files or lm-eval output folders).

    Raises:
        DataError: a path is missing, or nothing readable is a CoT sample.
    """
    skips = skips if skips is not None else SkipLog()
    samples: list[CotSample] = []
    files: list[Path] = []
    for p in paths:
        files += find_samples_files(p)
    for f in dict.fromkeys(files):
        samples += read_samples_file(f, skips=skips)
    skips.warn("samples")
    if not samples:
        raise DataError(
            "no chain-of-thought samples found (expected doc.question, doc.options and text resps)",
            file=", ".join(str(f) for f in files),
        )
    return select(samples, limit, seed)
