"""lm-eval glue: the hooks the task YAMLs under ``tasks_yaml/`` name (documents, prompts,
``process_results``, aggregations). Scoring lives in `opinbench.metrics`.

Every task's ``utils.py`` imports this package, so lm-eval's breakdown-metric
warnings are silenced here, where lm-eval runs (`quiet_logs`), and never as a
side effect of importing the metrics; and lm-eval's ``X_stderr`` becomes opinbench's
clustered standard error (`stderr`).
"""

from opinbench.harness import quiet_logs, stderr

quiet_logs.install()
stderr.install()
