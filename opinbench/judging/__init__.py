"""LLM judges over chain-of-thought samples: faithfulness and moderation.

lm-eval has no hook for judges, so they run afterwards over the samples a CoT
task logged (``--log_samples``) and write lm-eval-shaped results beside the run::

    samples.py       read samples_<task>_<ts>.jsonl; split reasoning from the final answer
    settings.py      judges/ templates (Jinja2) and settings (YAML)
    faithfulness.py  can a persona-blind judge recover the model's answer?
    control.py       judge calibration on VK explanations with known labels
    moderation.py    flagged share of reasoning traces, per category
    results.py       results_judge-<kind>_<ts>.json + per-item verdicts
    registry.py      each judge kind once: metric, verdict field, direction, options, code
    options.py       a judge run's settings as dataclasses (the flags, a definition's keys)
    kinds.py         what differs per kind: prepare, send, config, report; estimate's view
    api.py           run_judge(kind, options) -> JudgeOutcome: the one way to judge
    printing.py      what the command prints
    cli.py           ``opinbench judge faithfulness|moderation``: flags -> run_judge -> print

Providers, the reply cache and the retrying runner are the shared LLM-client
floor, `opinbench.llm`; everything here is importable without the API clients.
"""
