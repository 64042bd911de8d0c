"""Training: checkpoints the literature trains, from the records the tasks score.

    config.py       SFTConfig / GRPOConfig on TRL's configs, parsed by TrlParser; defaults from the papers
    data.py         training documents through the lm-eval task, split, leakage guard, data hash
    letters.py      first-token letter scoring: the KL / NLL losses and in-process scoring
    rationales.py   CoT targets: human explanations, synthetic STaR rationales
    rewards.py      GRPO rewards (TRL callables, get_* factories) on the tasks' answer parser
    sft.py          ``opinbench train sft`` (LetterTrainer, TRL SFTTrainer)
    grpo.py         ``opinbench train grpo`` (TRL GRPOTrainer)
    checkpoint.py   checkpoint folders: metadata, resume, merge, eval command
    distributed.py  under accelerate launch: main-process-only steps, the same examples on every rank
    evaluate.py     held-out WD of a checkpoint against its base model, in process
    cli.py          ``opinbench train sft|grpo|wd``

Needs the ``train`` extra (trl, peft); nothing here is imported by ``opinbench --help``.
"""
