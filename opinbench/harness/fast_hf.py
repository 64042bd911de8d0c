"""``--model opinbench-hf``: lm-eval's ``hf`` model, scoring only the positions it needs.

lm-eval's ``HFLM._loglikelihood_tokens`` (0.4.13) asks the model for logits at
every position of every padded sequence and takes a full-vocabulary
``log_softmax`` over all of them, then keeps the continuation positions only.
For the distribution tasks the continuation is one letter after a ~170-token
prompt, so more than 99 % of that work is thrown away: bench/README.md measured
the ``log_softmax`` alone at 6 % of an ``opinionqa_wd`` run, and the output
projection over the vocabulary (``lm_head``) at every position is a further
fifth of SmolLM2-135M's forward pass (49k-word vocabulary, 576 hidden units).

`ContinuationHFLM` is ``HFLM`` with one method replaced, for causal models: it
passes the continuation positions of the batch to the model as
``logits_to_keep`` (a 1-D index tensor, which transformers' causal LMs accept
and apply before ``lm_head``, so model-specific post-processing such as Gemma's
logit soft-capping still runs), and takes the ``log_softmax`` over those rows
only. Everything else is lm-eval's: tokenisation, the length-sorted batches and
the one-forward-per-context grouping (``Collator``, ``group_by="contexts"``),
left truncation, the ``(loglikelihood, is_greedy)`` answers and the cache hook.
Seq2seq models, and causal models whose ``forward`` has no ``logits_to_keep``,
keep lm-eval's path unchanged. It also remembers recent encodings (`tok_encode`):
lm-eval encodes a prompt again for every answer option.

Why a subclass and not an option of lm-eval: lm-eval 0.4.13 has none, and its
loop builds the batch and calls ``log_softmax`` in one method, so there is no
smaller hook to override. The change is upstreamable as is (select, then
normalise); until then the loop below is lm-eval's, minus the padded positions.
Results are the same numbers (tests/test_harness_fast_hf.py checks them against
``hf`` to 1e-5 on the real tasks' requests).

``--model opinbench-hf`` runs through ``opinbench eval``, ``python -m
opinbench.harness.fast_hf ARGS`` (lm-eval's CLI with the model registered), or in Python
after `opinbench.harness.lm_models.register` (or by passing a `ContinuationHFLM` to
``simple_evaluate``); see `opinbench.harness.lm_models`.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import Collator
from lm_eval.models.utils_hf import pad_and_concat
from tqdm import tqdm

from opinbench.harness.lm_models import FAST_HF as MODEL_NAME
from opinbench.harness.lm_models import cli_main as main
# lm-eval gives only its own "lm_eval" logger a handler (at --verbosity): a model of lm-eval's logs there.
log = logging.getLogger("lm_eval.models.opinbench_hf")

Request = tuple[tuple[str, str], list[int], list[int]]


def _accepts_logits_to_keep(model: Any) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


class ContinuationHFLM(HFLM):
    """lm-eval's ``HFLM`` computing logits and log-probabilities at the continuation positions only."""

    ENCODE_MEMO_SIZE = 4096

    def tok_encode(
        self, string: str, add_special_tokens: bool | None = None, left_truncate_len: int | None = None, **kwargs
    ) -> list[int]:
        """lm-eval's ``tok_encode``, remembering recent strings.

        lm-eval encodes a request's context afresh for every answer option (``_encode_pair``
        encodes context + option, then the context alone), so a five-option question encodes
        the same prompt five times. A bounded memo (oldest out first) keeps one encoding;
        callers get their own copy of the list.
        """
        if kwargs:
            return super().tok_encode(string, add_special_tokens, left_truncate_len, **kwargs)
        memo: dict[tuple, list[int]] = self.__dict__.setdefault("_encode_memo", {})
        key = (string, add_special_tokens, left_truncate_len)
        ids = memo.get(key)
        if ids is None:
            ids = memo[key] = super().tok_encode(string, add_special_tokens, left_truncate_len)
            if len(memo) > self.ENCODE_MEMO_SIZE:
                memo.pop(next(iter(memo)))
        return list(ids)

    def _loglikelihood_tokens(
        self,
        requests: list[Request],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        if self.backend != "causal" or self.batch_size == "auto" and override_bs is None:
            # lm-eval's automatic batch size probes the full-logits path; keep it whole.
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        keep_supported = _accepts_logits_to_keep(self.model)

        def sort_key(req: Request):  # lm-eval's: longest first, ties by tokens
            toks = req[1] + req[2]
            return -len(toks), tuple(toks)

        re_ord = Collator(
            requests,
            sort_fn=sort_key,
            group_by="contexts" if self.logits_cache else None,
            group_fn=lambda req: req[-2] + req[-1][:-1],
        )
        batch_size = override_bs if override_bs is not None else self.batch_size
        pbar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="Running loglikelihood requests")
        res: list[tuple[float, bool]] = []
        truncated = 0
        for chunk in re_ord.get_batched(n=batch_size, batch_fn=None):
            inps, spans = [], []
            for _, context_enc, continuation_enc in chunk:
                assert context_enc and continuation_enc and len(continuation_enc) <= self.max_length
                truncated += len(context_enc) + len(continuation_enc) > self.max_length + 1
                # as lm-eval: left-truncate to max_length + 1 tokens, then drop the last one
                inp = (context_enc + continuation_enc)[-(self.max_length + 1) :][:-1]
                inps.append(torch.tensor(inp, dtype=torch.long, device=self.device))
                # logits at position p predict token p + 1: the continuation's are the last len(cont)
                spans.append((len(inp) - len(continuation_enc), len(inp)))
            batched = pad_and_concat(max(len(x) for x in inps), inps, padding_side="right")
            positions = torch.tensor(sorted({p for a, b in spans for p in range(a, b)}), device=self.device)
            logits = self._continuation_logits(batched, positions, keep_supported)  # [batch, len(positions), vocab]
            column = {int(p): i for i, p in enumerate(positions.tolist())}
            for (request_str, ctx_tokens, cont_toks), row, (a, b) in zip(chunk, logits, spans, strict=True):
                cols = torch.tensor([column[p] for p in range(a, b)], device=self.device)
                logprobs = F.log_softmax(row.index_select(0, cols), dim=-1, dtype=self.softmax_dtype).unsqueeze(0)
                greedy = logprobs.argmax(dim=-1)
                for request_str_, cont_toks_, logprobs_ in re_ord.get_cache(
                    req_str=request_str, cxt_toks=ctx_tokens, cont_toks=cont_toks, logits=logprobs
                ):
                    cont = torch.tensor(cont_toks_, dtype=torch.long, device=self.device).unsqueeze(0)
                    is_greedy = bool((greedy[:, -cont.shape[1] :] == cont).all())
                    ll = torch.gather(logprobs_, 2, cont.unsqueeze(-1)).squeeze(-1)
                    answer = (float(ll.sum()), is_greedy)
                    res.append(answer)
                    if request_str_ is not None:
                        self.cache_hook.add_partial("loglikelihood", request_str_, answer)
                    pbar.update(1)
        pbar.close()
        if truncated:  # lm-eval warns once per request; once per call says the same
            log.warning("%d of %d requests were longer than the model's maximum length (%d tokens) "
                        "and were truncated from the left, as lm-eval does", truncated, len(requests), self.max_length)
        return re_ord.get_original(res)

    def _continuation_logits(self, inps: torch.Tensor, positions: torch.Tensor, keep_supported: bool) -> torch.Tensor:
        """Logits at ``positions`` (shared by the batch's rows) only, in one forward pass, no KV cache kept."""
        with (
            torch.no_grad(),
            torch.autocast(
                device_type=self.device.type,
                dtype=self.mixed_precision_dtype,
                enabled=self.mixed_precision_dtype is not None,
            ),
        ):
            if keep_supported:
                return self.model(inps, logits_to_keep=positions, use_cache=False).logits
            return self.model(inps).logits.index_select(1, positions)


if __name__ == "__main__":
    main()
