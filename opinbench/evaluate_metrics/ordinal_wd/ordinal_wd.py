"""Ordinal Wasserstein distance with its uniform and human bounds, as a Hugging Face ``evaluate`` metric.

The same numbers as opinbench's ``*_wd`` tasks (`opinbench.metrics.distribution`), for
people who score answer distributions outside lm-eval::

    import evaluate
    from opinbench.evaluate_metrics import ORDINAL_WD

    wd = evaluate.load(str(ORDINAL_WD))
    wd.compute(predictions=[[0.2, 0.8]], references=[[0.5, 0.5]], ordinal=[[1, 2]], n=[100])

Inputs: ``predictions`` (the model's distributions) and ``references`` (the humans'), one
list of probabilities per question over its ordinal options; ``ordinal``: the options'
ordinal values per question (default 1, 2, ...); ``n`` (optional): respondents behind each
reference, for the human bootstrap bound; ``human_resamples``, ``seed``.

Output: ``wd`` (mean normalised WD, 0 best, 1 worst), ``wd_uniform`` (mean WD of the
uniform distribution), and with ``n``: ``wd_human`` (mean bootstrap WD of the humans to
themselves) and ``wd_gap_closed`` ((uniform - wd) / (uniform - human)).
"""

import datasets
import evaluate
import numpy as np

from opinbench.metrics import distribution as M

_CITATION = """\
@inproceedings{santurkar2023whose,
  title={Whose Opinions Do Language Models Reflect?},
  author={Santurkar, Shibani and Durmus, Esin and Ladhak, Faisal and Lee, Cinoo and Liang, Percy and Hashimoto, Tatsunori},
  booktitle={ICML}, year={2023}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__)
class OrdinalWD(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation=_CITATION,
            inputs_description=__doc__,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("float64")),
                }
            ),
            reference_urls=["https://github.com/tatsu-lab/opinions_qa"],
        )

    def _compute(self, predictions, references, ordinal=None, n=None, human_resamples=1000, seed=0):
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        if ordinal is None:
            ordinal = [list(range(1, len(r) + 1)) for r in references]
        for i, (p, r, o) in enumerate(zip(predictions, references, ordinal)):
            if not len(p) == len(r) == len(o):
                raise ValueError(f"question {i}: {len(p)} predicted, {len(r)} reference and {len(o)} ordinal values")
        o = M.pad(ordinal)
        p = M.pad(predictions, o.shape[1], 0.0)
        r = M.pad(references, o.shape[1], 0.0)
        out = {
            "wd": float(np.nanmean(M.wasserstein(p, r, o))),
            "wd_uniform": float(np.nanmean(M.uniform_wd(r, o))),
        }
        if n is not None:
            human = M.human_bootstrap_wd(r, np.asarray(n, dtype=np.float64), o, n_resamples=human_resamples, seed=seed)
            out["wd_human"] = float(np.nanmean(human))
            out["wd_gap_closed"] = M.relative_improvement(out["wd"], out["wd_uniform"], out["wd_human"])
        return out
