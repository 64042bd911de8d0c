"""What differs between judge kinds: their settings, how they send, what their results hold.

`run_judge` (`opinbench.judging.api`) takes the steps every judge shares; a `JudgeKind`
subclass supplies the rest, in this order: `prepare` (settings files, control set; returns
the settings naming the default provider), `send`, `config` (its part of the results'
``config.judge``), `sample_verdicts` (one per sample, in the samples' order) and `report`
(one run folder's metrics). One instance serves one run and keeps the state between steps.
What the command prints is `opinbench.judging.printing`'s; what a run costs before it is
made, `prompt_texts`/`reply_tokens`/`control_prompts` (read by `opinbench.estimate.cost`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opinbench.errors import ConfigError
from opinbench.judging.options import FaithfulnessOptions, JudgeOptions, ModerationOptions


@dataclass
class JudgeReport:
    """One run folder's results from a judge: `write_results`' arguments, less the shared ones."""

    results: dict[str, dict[str, Any]]
    details: dict[str, Any]
    n_samples: dict[str, Any]
    versions: dict[str, Any]
    higher_is_better: dict[str, dict[str, bool]]
    configs: dict[str, Any]
    verdicts: list[dict[str, Any]]


class JudgeKind:
    """One kind of judge (see the module docstring)."""

    def __init__(self, options: JudgeOptions) -> None:
        self.options = options
        self.spec: Any = None  # the provider spec, once chosen

    def prepare(self, samples: Sequence[Any]) -> Any:
        raise NotImplementedError

    def send(self, samples: Sequence[Any], **run_kw: Any) -> Any:
        """Judge the samples (``run_kw``: provider, cache, options, budget); has ``stats``."""
        raise NotImplementedError

    def config(self, run: Any) -> dict[str, Any]:
        raise NotImplementedError

    def headline(self, run: Any, role: str) -> str:
        return f"{role}: {self.spec}"

    def sample_verdicts(self, run: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def report(
        self, run: Any, tasks: list[str], group: list[Any], verdicts: list[dict[str, Any]]
    ) -> JudgeReport:
        raise NotImplementedError

    # -- before a run: what it would send (`opinbench estimate`)

    def prompt_texts(
        self, family: str, question: str, options: Sequence[str], reasoning: str
    ) -> list[str] | None:
        """The texts sent for one generation besides its reasoning; None: not judged."""
        raise NotImplementedError

    def reply_tokens(self, family: str) -> int:
        """Tokens a reply may take (its ``max_tokens``)."""
        raise NotImplementedError

    def control_prompts(self) -> Iterator[tuple[list[str], int]]:
        """Texts and reply tokens of the control requests a run adds."""
        return iter(())


class FaithfulnessJudge(JudgeKind):
    """Can a judge recover the model's answer from its reasoning alone? With a control set."""

    options: FaithfulnessOptions

    def __init__(self, options: FaithfulnessOptions) -> None:
        super().__init__(options)
        self.settings: dict[str, Any] = {}
        self.control: list[Any] = []
        self.control_m: dict[str, Any] = {}
        self.control_d: dict[str, Any] = {}

    def family_settings(self, family: str) -> Any:
        from opinbench.judging.settings import faithfulness_settings

        if family not in self.settings:
            self.settings[family] = faithfulness_settings(family, self.options.judges_dir)
        return self.settings[family]

    @property
    def vk(self) -> Any:
        return self.settings.get("vk")

    def prepare(self, samples: Sequence[Any]) -> Any:
        from opinbench.judging.control import load_control

        o = self.options
        families = sorted({s.family for s in samples} | ({"vk"} if not o.no_control else set()))
        for fam in families:
            self.family_settings(fam)
        defaults = {st.get("judge") for st in self.settings.values()}
        if not o.judge and len(defaults) > 1:
            raise ConfigError(
                f"the task families' settings name different default judges {sorted(defaults)}; "
                "pass --judge"
            )
        if not o.no_control:
            self.control = load_control(
                o.control_data, self.vk.get("control") or {}, limit=o.control_limit, seed=o.seed
            )
        return self.settings[families[0]]

    def send(self, samples: Sequence[Any], **run_kw: Any) -> Any:
        from opinbench.judging import faithfulness as F

        o = self.options
        overrides = F.Overrides(
            max_tokens=o.max_tokens, temperature=o.temperature,
            temperature_set=o.temperature is not None,
        )
        run = F.run_faithfulness(
            samples, settings=self.settings, control=self.control, control_settings=self.vk,
            overrides=overrides, **run_kw,
        )
        neutral_vk = {x.casefold() for x in (self.vk.get("neutral_options", []) if self.vk else [])}
        if self.control:
            self.control_m, self.control_d = F.control_metrics(run.control_verdicts, neutral_vk)
        return run

    def config(self, run: Any) -> dict[str, Any]:
        o = self.options
        return {
            "overrides": {"max_tokens": o.max_tokens, "temperature": o.temperature},
            "families": {fam: st.describe() for fam, st in self.settings.items()},
            "seed": o.seed,
            "limit": o.limit,
            "control": None
            if o.no_control
            else {
                "source": str(o.control_data) if o.control_data else "data registry (vk)",
                "records": len({c.record_id for c in self.control}),
                "conditions": sorted({c.condition for c in self.control}),
            },
        }

    def sample_verdicts(self, run: Any) -> list[dict[str, Any]]:
        return run.sample_verdicts

    def report(
        self, run: Any, tasks: list[str], group: list[Any], verdicts: list[dict[str, Any]]
    ) -> JudgeReport:
        from opinbench.judging import faithfulness as F

        fam_of = {s.task: s.family for s in group}
        results, details, n_samples = self._task_metrics(tasks, verdicts)
        if self.control:
            results["judge_control"] = {"alias": "judge_control", **self.control_m}
            details["control"] = self.control_d
            n_samples["judge_control"] = {
                "original": len(run.control_verdicts),
                "effective": sum(v["status"] == "judged" for v in run.control_verdicts),
            }
        versions = {t: self.settings[fam_of[t]].version for t in tasks}
        versions["all"] = max(versions.values())
        if self.control:
            versions["judge_control"] = self.vk.version
        return JudgeReport(
            results=results,
            details=details,
            n_samples=n_samples,
            versions=versions,
            higher_is_better={t: dict(F.HIGHER_IS_BETTER) for t in results},
            configs={
                t: {
                    "task": t,
                    "family": fam_of[t],
                    "judge_settings": self.settings[fam_of[t]].path.name,
                    "template_sha256": self.settings[fam_of[t]].template_sha256,
                }
                for t in tasks
            },
            verdicts=verdicts + run.control_verdicts,
        )

    def _task_metrics(self, tasks: list[str], verdicts: list[dict[str, Any]]) -> tuple[Any, ...]:
        """Per task and over all of them: results, details, n_samples."""
        from opinbench.judging import faithfulness as F

        results: dict[str, dict[str, Any]] = {}
        details: dict[str, Any] = {"tasks": {}}
        n_samples: dict[str, dict[str, int]] = {}
        for t in tasks + ["all"]:
            m, d, n = F.sample_metrics(verdicts if t == "all" else
                                       [v for v in verdicts if v["task"] == t])
            results[t] = {"alias": t, **m, **F.beside(self.control_m)}
            if t == "all":
                details["all"] = d
            else:
                details["tasks"][t] = d
            n_samples[t] = n
        return results, details, n_samples

    # -- estimate

    def prompt_texts(
        self, family: str, question: str, options: Sequence[str], reasoning: str
    ) -> list[str] | None:
        from opinbench.judging.faithfulness import build_request
        from opinbench.judging.settings import FAMILIES

        if family not in FAMILIES:
            return None  # a family without a faithfulness judge
        req = build_request(
            self.family_settings(family), question=question, options=options, reasoning=reasoning
        )
        return [text for _, text in req.messages] + ([req.system] if req.system else [])

    def reply_tokens(self, family: str) -> int:
        return int(self.family_settings(family).get("max_tokens", 64))

    def control_prompts(self) -> Iterator[tuple[list[str], int]]:
        from opinbench.judging.control import load_control

        vk = self.family_settings("vk")
        for item in load_control(None, vk.get("control") or {}, seed=0):
            texts = self.prompt_texts("vk", item.question, item.options, item.reasoning)
            yield texts or [], self.reply_tokens("vk")


class ModerationJudge(JudgeKind):
    """The share of reasoning traces a moderator flags, per category."""

    options: ModerationOptions

    def prepare(self, samples: Sequence[Any]) -> Any:
        from opinbench.judging.settings import load_settings

        self.settings = load_settings("moderation", self.options.judges_dir)
        return self.settings

    def send(self, samples: Sequence[Any], **run_kw: Any) -> Any:
        from opinbench.judging import moderation as M

        return M.run_moderation(
            samples,
            settings=self.settings,
            mode=self.options.moderator_prompt or self.settings.get("prompt", "auto"),
            max_tokens=self.options.max_tokens,
            **run_kw,
        )

    def config(self, run: Any) -> dict[str, Any]:
        return {
            "prompt_mode": run.mode,
            "settings": self.settings.describe(),
            "seed": self.options.seed,
            "limit": self.options.limit,
        }

    def headline(self, run: Any, role: str) -> str:
        return f"{super().headline(run, role)} ({run.mode})"

    def sample_verdicts(self, run: Any) -> list[dict[str, Any]]:
        return run.verdicts

    def report(
        self, run: Any, tasks: list[str], group: list[Any], verdicts: list[dict[str, Any]]
    ) -> JudgeReport:
        from opinbench.judging import moderation as M

        results: dict[str, dict[str, Any]] = {}
        details: dict[str, Any] = {"tasks": {}, "categories": run.categories}
        n_samples = {}
        for t in tasks + ["all"]:
            vs = verdicts if t == "all" else [v for v in verdicts if v["task"] == t]
            m, d, n = M.moderation_metrics(vs, run.categories)
            results[t] = {"alias": t, **m}
            if t == "all":
                details["all"] = d
            else:
                details["tasks"][t] = {k: x for k, x in d.items() if k != "flagged"}
            n_samples[t] = n
        return JudgeReport(
            results=results,
            details=details,
            n_samples=n_samples,
            versions={t: self.settings.version for t in results},
            higher_is_better={
                t: {
                    k.split(",")[0]: False
                    for k in r
                    if k.endswith(",none") and "_stderr" not in k and "_ci_" not in k
                }
                for t, r in results.items()
            },
            configs={
                t: {
                    "task": t,
                    "moderator": str(self.spec),
                    "template_sha256": self.settings.template_sha256,
                }
                for t in tasks
            },
            verdicts=verdicts,
        )

    # -- estimate: one moderation call per generation, its input the reasoning alone

    def prompt_texts(
        self, family: str, question: str, options: Sequence[str], reasoning: str
    ) -> list[str] | None:
        return [reasoning] if reasoning else []

    def reply_tokens(self, family: str) -> int:
        return 0


def metric_value(report: JudgeReport, metric: str) -> float | None:
    """The headline metric over all of a run folder's tasks (None when there is no number)."""
    value = report.results.get("all", {}).get(f"{metric},none")
    return value if isinstance(value, (int, float)) and not math.isnan(value) else None
