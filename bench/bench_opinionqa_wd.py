"""Benchmark: opinionqa_wd end to end in lm-eval vs the model's raw forward passes.

Measured side by side in one run, on the same documents and the same model:

(a) end to end: ``lm_eval.simple_evaluate`` on ``opinionqa_wd`` (dataset build,
    prompt rendering, request building, lm-eval's batching and loglikelihoods,
    our process_results and aggregations), in (question, group) pairs per second;
(b) raw: the model's forward passes alone over the exact token sequences lm-eval
    fed it, timed two ways: inside (a) itself (hooks around the model's forward,
    so machine-speed drift cannot separate the two numbers), and replayed alone
    over the recorded batches right after (a) as a cross-check;
(c) raw + lm-eval's log_softmax: (b) plus the full-vocabulary log_softmax that
    lm-eval's HF backend applies to every position of every batch, to show how
    much of the overhead is lm-eval's own and how much is the task's.

(a) and (b) are measured for each lm-eval model named in ``--models`` (default
``hf``, lm-eval's own, and ``opinbench-hf``, `opinbench.harness.fast_hf`, which asks
the model for the continuation positions' logits only), alternating, on the same
documents and the same loaded weights. (b') and (c) replay the batches lm-eval's
``hf`` fed the model, with every position's logits, as the model's own forward does.

It prints the throughputs, the harness overhead (1 - a/b), the part of it that
is not lm-eval's log_softmax (1 - a/c), and the forward passes per document. Usage::

    OPINBENCH_DATA_DIR=../shared/data python bench/bench_opinionqa_wd.py [--docs 340] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=340, help="(question, group) pairs to score")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--model", default="smollm2", help="packaged model name or HF folder")
    ap.add_argument("--no-chat", action="store_true", help="score as a base model (no chat template)")
    ap.add_argument("--repeats", type=int, default=2, help="alternate (a) and (b) this many times; best of each")
    ap.add_argument("--models", default="hf,opinbench-hf", help="lm-eval model names to compare, comma-separated")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from opinbench.harness.fast_hf import MODEL_NAME as FAST_HF
    from opinbench.harness.fast_hf import ContinuationHFLM
    from opinbench.harness.tasks import task_manager
    from opinbench.models import resolve

    path = resolve(args.model)
    lm = HFLM(pretrained=path, batch_size=args.batch_size, device="cpu", dtype="float32")
    model = lm.model
    # the same weights and tokenizer behind every variant
    variants = {"hf": lm, FAST_HF: ContinuationHFLM(pretrained=model, tokenizer=lm.tokenizer, batch_size=args.batch_size)}
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(variants))
    if unknown:
        ap.error(f"--models: unknown {unknown}; choose from {sorted(variants)}")
    recorded: list[torch.Tensor] = []
    forward_time = [0.0]
    started = [0.0]

    def hook(_module, a, kw):
        recorded.append((a[0] if a else kw["input_ids"]).detach().clone())
        started[0] = time.perf_counter()

    def done(_module, _a, _kw, _out):
        forward_time[0] += time.perf_counter() - started[0]

    tm = task_manager()

    def end_to_end(name: str = "hf") -> tuple[float, int, dict]:
        recorded.clear()
        forward_time[0] = 0.0
        handle = model.register_forward_pre_hook(hook, with_kwargs=True)
        handle_done = model.register_forward_hook(done, with_kwargs=True)
        t0 = time.perf_counter()
        out = simple_evaluate(
            model=variants[name], tasks=["opinionqa_wd"], task_manager=tm, limit=args.docs,
            apply_chat_template=not args.no_chat, log_samples=False, bootstrap_iters=0,
        )
        dt = time.perf_counter() - t0
        handle.remove()
        handle_done.remove()
        return dt, sum(x.shape[0] for x in recorded), out["results"]["opinionqa_wd"]

    def raw(batches: list[torch.Tensor], log_softmax: bool = False) -> float:
        t0 = time.perf_counter()
        with torch.no_grad():  # as lm-eval's _model_call
            for ids in batches:
                logits = model(ids).logits
                if log_softmax:
                    torch.nn.functional.log_softmax(logits, dim=-1)
        return time.perf_counter() - t0

    # warm-up (first batches pay for allocations and thread start-up)
    for name in names:
        end_to_end(name)
    end_to_end("hf")
    batches = list(recorded)  # what lm-eval's hf fed the model: the raw replays' input
    e2e_times: dict[str, list[float]] = {n: [] for n in names}
    inside: dict[str, list[float]] = {n: [] for n in names}
    rows_per_doc: dict[str, float] = {}
    wd: dict[str, float] = {}
    raw_times, lsm_times = [], []
    for _ in range(args.repeats):
        for name in names:
            dt, rows, res = end_to_end(name)
            e2e_times[name].append(dt)
            inside[name].append(forward_time[0] / dt)
            rows_per_doc[name] = rows / args.docs
            wd[name] = res.get("wd,none")
        raw_times.append(raw(batches))
        lsm_times.append(raw(batches, log_softmax=True))
    n_docs = args.docs
    rawps = n_docs / min(raw_times)
    lsmps = n_docs / min(lsm_times)
    tokens = sum(b.numel() for b in batches)
    per_model = {}
    for name in names:
        e2e = n_docs / min(e2e_times[name])
        share = max(inside[name])  # forward time / end-to-end time, within the same run
        per_model[name] = {
            "forward_rows_per_doc": rows_per_doc[name],
            "end_to_end_pairs_per_s": e2e,
            "forward_share_inside_e2e": inside[name],
            "harness_overhead_inside_e2e": 1 - share,
            "raw_inside_e2e_pairs_per_s": e2e / share,
            "ratio_end_to_end_over_raw": e2e / rawps,
            "overhead_beyond_lm_eval_log_softmax": 1 - e2e / lsmps,
            "e2e_seconds": e2e_times[name],
            "wd": wd[name],
        }
    report = {
        "model": str(path),
        "chat_template": not args.no_chat,
        "docs": n_docs,
        "batch_size": args.batch_size,
        "tokens_per_doc": tokens / n_docs,
        "raw_forward_pairs_per_s": rawps,
        "raw_with_log_softmax_pairs_per_s": lsmps,
        "raw_seconds": raw_times,
        "raw_log_softmax_seconds": lsm_times,
        "models": per_model,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    print(
        f"opinionqa_wd on {args.model} ({'chat' if not args.no_chat else 'base'}), {n_docs} (question, group) pairs, "
        f"batch {args.batch_size}, {report['tokens_per_doc']:.0f} tokens per pair, best of {args.repeats}"
    )
    width = max(14, *(len(n) + 2 for n in names))
    print(f"  {'':42s}" + "".join(f"{n:>{width}s}" for n in names))

    def line(label: str, key: str, fmt: str) -> None:
        print(f"  {label:42s}" + "".join(f"{format(per_model[n][key], fmt):>{width}s}" for n in names))

    line("forward rows per document", "forward_rows_per_doc", ".2f")
    line("(a) end to end, pairs/s", "end_to_end_pairs_per_s", ".2f")
    line("(b) its forward passes, timed inside (a)", "raw_inside_e2e_pairs_per_s", ".2f")
    line("harness overhead 1 - a/b", "harness_overhead_inside_e2e", ".1%")
    line("a/b' (b': full-logit forward, replayed)", "ratio_end_to_end_over_raw", ".3f")
    line("wd", "wd", ".6f")
    print(f"  (b') the model's forward (logits at every position) over hf's batches, replayed: {rawps:.2f} pairs/s")
    print(f"  (c)  (b') + lm-eval's full-vocabulary log_softmax, replayed:                    {lsmps:.2f} pairs/s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
