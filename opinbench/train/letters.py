"""First-token letter scoring: the training side of the ``*_wd`` and ``*_direct`` tasks.

A document's choices are its option letters twice, ``" A" ... " J"`` then
``"A" ... "J"`` (`opinbench.harness.distribution.doc_to_choice`). lm-eval
scores each choice as the log-likelihood of its continuation tokens after the
context; with a chat template the template's trailing newline is moved into
the continuation, so a continuation can be several tokens (``"\\n", " A"``).
Here each choice keeps exactly the tokens lm-eval scores (`build_example`), and
one batched forward pass gives all of them (`choice_logprobs`):

* the sequences fed to the model are ``context + continuation[:-1]``, deduplicated
  (lm-eval's logits cache groups requests the same way: one forward pass per
  document when the letter is one token, two when the tokenizer splits the space);
* sequences are **left-padded** so that every needed position sits at the end,
  and only the last few positions' logits are computed (``logits_to_keep``):
  the vocabulary projection, the costliest layer of a small model, runs on a
  handful of positions instead of the whole prompt.

Then (`letter_logprobs`) a letter's log-probability is the log-sum-exp of its
two spellings, as the harness sums their probabilities, and the training
objectives are:

* ``kl`` (distributional SFT): forward KL(human || model) with the model's
  letter distribution renormalised over the ordinal options, exactly what the
  task's ``kl`` metric measures (there without the 1e-6 smoothing);
* ``nll`` (answer-only SFT): ``-log P(gold letter)`` (both spellings), not
  renormalised: the likelihood of answering with the gold letter.

>>> import torch
>>> lp = torch.log(torch.tensor([0.1, 0.2, 0.05, 0.05, 0.1, 0.0]))  # " A" " B" " C" "A" "B" "C"
>>> letters = letter_logprobs(lp, 3)
>>> [round(float(x), 3) for x in letters.exp()]
[0.15, 0.3, 0.05]
>>> round(float(kl_loss(letters, torch.tensor([0.5, 0.5]))), 4)  # model (1/3, 2/3) over A, B
0.0589
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OBJECTIVES = ("kl", "nll")


@dataclass(frozen=True)
class LetterExample:
    """One document, ready for first-token scoring.

    Attributes:
        id: the document id.
        rows: the token sequences to feed (``context + continuation[:-1]``, deduplicated).
        choices: per choice, in the task's choice order: ``(row, position, targets)``;
            the logits at ``row[position + i]`` predict ``targets[i]``.
        n_letters: number of option letters (``len(choices) == 2 * n_letters``).
        n_ordinal: the first ``n_ordinal`` letters are the ordinal options.
        target: the human distribution over the ordinal options (``kl``).
        gold: index of the gold letter (``nll``), else -1.
    """

    id: str
    rows: tuple[tuple[int, ...], ...]
    choices: tuple[tuple[int, int, tuple[int, ...]], ...]
    n_letters: int
    n_ordinal: int
    target: tuple[float, ...] = ()
    gold: int = -1

    @property
    def length(self) -> int:
        return max(len(r) for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "rows": [list(r) for r in self.rows],
            "choices": [[r, p, list(t)] for r, p, t in self.choices],
            "n_letters": self.n_letters, "n_ordinal": self.n_ordinal, "target": list(self.target), "gold": self.gold,
        }


def modal_index(distribution: Sequence[float]) -> int | None:
    """Index of the largest share, None when the top two tie (as `opinbench.harness.answer_docs.modal_option`)."""
    d = list(distribution)
    best = max(range(len(d)), key=lambda i: d[i])
    if sum(1 for p in d if abs(p - d[best]) <= 1e-12) > 1:
        return None
    return best


def build_example(renderer: Any, task: Any, doc: dict[str, Any], *, objective: str = "kl") -> LetterExample | None:
    """The `LetterExample` of one task document; None for an answer-only document without a single mode."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}")
    context = renderer.context(task, doc)
    conts = renderer.choices(task, doc)
    n = len(doc["letters"])
    if len(conts) != 2 * n:
        raise ValueError(f"{doc['id']}: expected {2 * n} choices (each letter twice), got {len(conts)}")
    rows: dict[tuple[int, ...], int] = {}
    choices = []
    for cont in conts:
        ctx_enc, cont_enc = renderer.encode_pair(context, cont)
        whole = list(ctx_enc) + list(cont_enc)
        row = tuple(whole[:-1])
        idx = rows.setdefault(row, len(rows))
        choices.append((idx, len(ctx_enc) - 1, tuple(cont_enc)))
    if "distribution" in doc:
        n_ordinal = int(doc["n_ordinal"])
        target = tuple(float(p) for p in doc["distribution"])
        gold = modal_index(target) if objective == "nll" else -1
        if gold is None:
            return None
    else:  # an answer document: every option counts
        n_ordinal = n
        gold = doc["letters"].index(doc["answer_letter"])
        target = tuple(1.0 if i == gold else 0.0 for i in range(n))
    return LetterExample(str(doc["id"]), tuple(rows), tuple(choices), n, n_ordinal, target, gold)


# --------------------------------------------------------------------------- batching


def collate(examples: Sequence[LetterExample], pad_id: int) -> dict[str, Any]:
    """Left-padded rows of a batch and the gather indices of every scored token."""
    import torch

    rows: list[tuple[int, ...]] = []
    offsets = []
    for ex in examples:
        offsets.append(len(rows))
        rows.extend(ex.rows)
    width = max(len(r) for r in rows)
    keep = 1
    for ex, off in zip(examples, offsets):
        for r, pos, targets in ex.choices:
            n_row = len(ex.rows[r])
            keep = max(keep, n_row - pos)
            assert pos + len(targets) <= n_row
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    row_idx, col_idx, tok_idx, choice_idx = [], [], [], []
    n_choices = 0
    for ex, off in zip(examples, offsets):
        for j, (r, pos, targets) in enumerate(ex.choices):
            n_row = len(ex.rows[r])
            for i, t in enumerate(targets):
                row_idx.append(off + r)
                col_idx.append(keep - n_row + pos + i)
                tok_idx.append(t)
                choice_idx.append(n_choices + j)
        n_choices += len(ex.choices)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "position_ids": position_ids,
        "logits_to_keep": keep,
        "row_idx": torch.tensor(row_idx, dtype=torch.long),
        "col_idx": torch.tensor(col_idx, dtype=torch.long),
        "tok_idx": torch.tensor(tok_idx, dtype=torch.long),
        "choice_idx": torch.tensor(choice_idx, dtype=torch.long),
        "n_choices": n_choices,
        "n_letters": [ex.n_letters for ex in examples],
        "n_ordinal": [ex.n_ordinal for ex in examples],
        "target": [torch.tensor(ex.target, dtype=torch.float32) for ex in examples],
        "gold": [ex.gold for ex in examples],
    }


def choice_logprobs(model: Any, batch: dict[str, Any]) -> Any:
    """Log-likelihood of every choice of the batch (flat, in example then choice order)."""
    import torch

    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        logits_to_keep=batch["logits_to_keep"],
        use_cache=False,
    )
    logits = out.logits[:, -batch["logits_to_keep"]:, :].float()
    logp = torch.log_softmax(logits, dim=-1)
    tok = logp[batch["row_idx"], batch["col_idx"], batch["tok_idx"]]
    total = torch.zeros(batch["n_choices"], dtype=tok.dtype, device=tok.device)
    return total.index_add(0, batch["choice_idx"].to(tok.device), tok)


def letter_logprobs(choice_lp: Any, n_letters: int) -> Any:
    """log P(letter) = logsumexp(log P(" X"), log P("X")) for the ``n_letters`` letters of one document."""
    import torch

    return torch.logaddexp(choice_lp[:n_letters], choice_lp[n_letters: 2 * n_letters])


def kl_loss(letter_lp: Any, target: Any) -> Any:
    """KL(target || model) with the model renormalised over the first ``len(target)`` letters."""
    import torch

    k = target.shape[0]
    log_q = letter_lp[:k] - torch.logsumexp(letter_lp[:k], dim=0)
    p = target.to(log_q.device, log_q.dtype)
    nz = p > 0
    return (p[nz] * (torch.log(p[nz]) - log_q[nz])).sum()


def batch_loss(choice_lp: Any, batch: dict[str, Any], objective: str) -> tuple[Any, dict[str, float]]:
    """Mean loss over the batch's documents, and diagnostics (letter mass)."""
    import torch

    losses, masses = [], []
    off = 0
    for n, target, gold in zip(batch["n_letters"], batch["target"], batch["gold"]):
        lp = letter_logprobs(choice_lp[off: off + 2 * n], n)
        off += 2 * n
        losses.append(kl_loss(lp, target) if objective == "kl" else -lp[gold])
        masses.append(float(torch.logsumexp(lp.detach(), dim=0).exp()))
    return torch.stack(losses).mean(), {"letter_mass": float(np.mean(masses))}


def score(model: Any, examples: Sequence[LetterExample], *, pad_id: int, batch_size: int = 8,
          progress: bool = True, desc: str = "scoring") -> list[list[float]]:
    """Choice log-likelihoods per example, in lm-eval's order (no gradient)."""
    import torch
    from tqdm.auto import tqdm

    out: list[list[float]] = []
    # Longest first keeps padding low; results go back in the input order.
    order = sorted(range(len(examples)), key=lambda i: -examples[i].length)
    results: dict[int, list[float]] = {}
    with torch.no_grad():
        bar = tqdm(total=len(examples), desc=desc, disable=not progress, dynamic_ncols=True)
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            batch = collate([examples[i] for i in idx], pad_id)
            lp = choice_logprobs(model, batch).cpu().tolist()
            off = 0
            for i in idx:
                k = len(examples[i].choices)
                results[i] = lp[off: off + k]
                off += k
            bar.update(len(idx))
        bar.close()
    for i in range(len(examples)):
        out.append(results[i])
    return out

