"""The OpinionQA / SubPOP analyses (issue 9): pure functions from the model's answer
distributions of logged ``*_wd`` samples to the numbers the report shows.

Data flows one way: `model_answers` turns lm-eval sample rows into `ModelAnswer`s
(one per question and group: the model's distribution next to the group's), and
each other module reduces a list of them:

* `representativeness`: R(G) = 1 - mean WD per group and attribute, ranking, max-min gap;
* `steerability`: best of the QA/BIO/PORTRAY steerings per question and group, each alone,
  gain over the unsteered model;
* `topics`: per-topic WD and consistency of the closest group across topics;
* `refusal`: model probability on non-substantive options beside the human share;
* `disagreement`: human-vs-human and human-vs-steered-model mean WD matrices;
* `improvement`: per-group relative WD improvement of one run over another.

Nothing here reads files or imports lm-eval or matplotlib.
"""
