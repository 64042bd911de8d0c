"""Regression checks between two runs of opinbench's tasks (`opinbench regress`).

Data flows one way through the sub-modules:

* `values`: one side (an lm-eval run folder, via `opinbench.runs`) -> per-document
  values recomputed with `opinbench.metrics`;
* `baseline`: those values as a committed baseline file (``regress record``) and back;
* `stats`: paired tests over questions and Holm's correction;
* `check`: comparability (exit 2), the tests per metric, tolerances and verdicts;
* `report`: markdown, JSON and JUnit XML renderings of a `check.regress` report.
"""
