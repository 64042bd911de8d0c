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
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from opinbench.models import resolve
    from opinbench.paths import tasks_dir

    path = resolve(args.model)
    lm = HFLM(pretrained=path, batch_size=args.batch_size, device="cpu", dtype="float32")
    model = lm.model
    recorded: list[torch.Tensor] = []
    forward_time = [0.0]
    started = [0.0]

    def hook(_module, a, kw):
        recorded.append((a[0] if a else kw["input_ids"]).detach().clone())
        started[0] = time.perf_counter()

    def done(_module, _a, _kw, _out):
        forward_time[0] += time.perf_counter() - started[0]

    tm = TaskManager(include_path=str(tasks_dir()), include_defaults=False)

    def end_to_end() -> tuple[float, int, dict]:
        recorded.clear()
        forward_time[0] = 0.0
        handle = model.register_forward_pre_hook(hook, with_kwargs=True)
        handle_done = model.register_forward_hook(done, with_kwargs=True)
        t0 = time.perf_counter()
        out = simple_evaluate(
            model=lm, tasks=["opinionqa_wd"], task_manager=tm, limit=args.docs,
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
    end_to_end()
    batches = list(recorded)
    e2e_times, raw_times, lsm_times, inside = [], [], [], []
    for _ in range(args.repeats):
        dt, rows, res = end_to_end()
        e2e_times.append(dt)
        inside.append(forward_time[0] / dt)
        batches = list(recorded)
        raw_times.append(raw(batches))
        lsm_times.append(raw(batches, log_softmax=True))
    n_docs = args.docs
    e2e = n_docs / min(e2e_times)
    rawps = n_docs / min(raw_times)
    lsmps = n_docs / min(lsm_times)
    tokens = sum(b.numel() for b in batches)
    share = max(inside)  # forward time / end-to-end time, within the same run
    report = {
        "model": str(path),
        "chat_template": not args.no_chat,
        "docs": n_docs,
        "batch_size": args.batch_size,
        "forward_rows_per_doc": rows / n_docs,
        "tokens_per_doc": tokens / n_docs,
        "end_to_end_pairs_per_s": e2e,
        "raw_forward_pairs_per_s": rawps,
        "ratio_end_to_end_over_raw": e2e / rawps,
        "harness_overhead": 1 - e2e / rawps,
        "forward_share_inside_e2e": inside,
        "harness_overhead_inside_e2e": 1 - share,
        "raw_inside_e2e_pairs_per_s": e2e / share,
        "raw_with_log_softmax_pairs_per_s": lsmps,
        "overhead_beyond_lm_eval_log_softmax": 1 - e2e / lsmps,
        "e2e_seconds": e2e_times,
        "raw_seconds": raw_times,
        "raw_log_softmax_seconds": lsm_times,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "wd": res.get("wd,none"),
    }
    print(f"opinionqa_wd on {args.model} ({'chat' if not args.no_chat else 'base'}), {n_docs} (question, group) pairs, batch {args.batch_size}")
    print(f"  forward rows per document      {report['forward_rows_per_doc']:.2f}")
    print(f"  (a) end to end, lm-eval        {e2e:8.2f} pairs/s   (best of {len(e2e_times)} runs, {statistics.mean(e2e_times):.1f} s mean)")
    print(f"  (b) raw forward inside (a)     {e2e / share:8.2f} pairs/s   (forward passes are {100 * share:.1f}% of (a))")
    print(f"  (b') raw forward, replayed      {rawps:8.2f} pairs/s")
    print(f"  (c) raw + lm-eval log_softmax  {lsmps:8.2f} pairs/s")
    print(f"  ratio a/b                      {share:.3f}   harness overhead {100 * (1 - share):.1f}%")
    print(f"  ratio a/b'                     {report['ratio_end_to_end_over_raw']:.3f}   (replayed; machine-speed drift shows here)")
    print(f"  ratio a/c                      {e2e / lsmps:.3f}   (replayed with lm-eval's full-vocabulary log_softmax)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
