"""opinbench: opinion-alignment benchmarks for lm-evaluation-harness.

Data flows one way through the package:

    raw source files  --opinbench.data-->      canonical records
    records           --opinbench.prompts-->   prompts (Jinja2)
    prompts           --lm-eval (tasks_yaml)-> model outputs
    outputs           --opinbench.metrics-->   scores
    scores            --opinbench.report / leaderboard--> reports
"""

__version__ = "0.1.0"
