"""The metrics of the sampled-answer and default-model distribution tasks.

``*_wd_sampled`` (`opinbench.harness.sampled`) estimates the model's distribution from
sampled answers; ``opinionqa_wd_default`` (`opinbench.harness.default_model`) scores one
unsteered question against every group. Their per-document values are computed by those
hooks; logged samples of these kinds are not re-scored (`opinbench.scoring.kinds`).
"""

from __future__ import annotations

from opinbench.scoring.distribution import DIAGNOSTICS
from opinbench.scoring.metric import DEFAULT_MODEL, SAMPLED, Metric, register

register(
    Metric("wd_sampled", "Wasserstein distance (sampled answers)", False, (SAMPLED,), breakdown=True),
    Metric("wd_sampling_noise", "WD of sampling noise alone", False, (SAMPLED,),
           description="expected WD of the sampled histogram from the distribution it was drawn from"),
    Metric("kl_sampled", "KL divergence (sampled answers)", False, (SAMPLED,)),
    Metric("onehot_sampled", "modal-answer agreement (sampled answers)", True, (SAMPLED,)),
    Metric("invalid_rate", "invalid samples", False, (SAMPLED,)),
    Metric("refusal_rate", "refused samples", False, (SAMPLED,)),
    Metric("no_valid_sample", "documents without a valid sample", False, (SAMPLED,)),
    Metric("n_valid_samples", "valid samples per document", True, (SAMPLED,)),
    Metric("refusal_mass", "refusal mass", False, (DEFAULT_MODEL,),
           description="the model's probability on the non-substantive options"),
)
# The *_wd diagnostics scored on the sampled histogram (`opinbench.harness.sampled.diagnostics`).
register(*(Metric(f"{m.key}_sampled", f"{m.display} (sampled answers)", m.higher_is_better, (SAMPLED,), stderr=m.stderr,
                  description=f"{m.description}, from the sampled answers") for m in DIAGNOSTICS))
