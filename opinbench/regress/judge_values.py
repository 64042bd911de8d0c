"""Judge verdicts of one side of a regression check, per judged item.

``opinbench judge faithfulness|moderation`` writes ``judge-<kind>_verdicts_<ts>.jsonl``
(one object per generation: ``task``, ``doc_id``, ``repeat``, ``status``, and
``faithful`` or ``flagged`` when judged) and ``results_judge-<kind>_<ts>.json``
(the judge's settings under ``config.judge``) into the lm-eval run folder;
`opinbench.runs.judge_files` finds the newest of each kind. Per judge kind a
`JudgeValues` holds:

* ``metric``: ``cot_faithfulness`` (the judge recovered the model's own answer
  from its reasoning; higher is better) or ``cot_offensive_rate`` (the
  moderator flagged the reasoning; lower is better), each 0/1 per item;
* ``settings``: what must match for two sides' verdicts to be comparable
  (`judge_settings`: provider, model, prompt mode, a digest per judge prompt of
  its template hash and settings file, the command-line overrides);
  `settings_difference` names the first that differs;
* ``items``: task -> document ``id`` -> repeat -> 0/1, for the items the judge
  judged (status ``judged``). Excluded, invalid, refused, failed and skipped
  items are left out, as the judge's own metric leaves them out.

Items are keyed by the document's ``id`` (lm-eval's ``doc_id`` mapped through
the samples file the side was read from), so that they pair with that task's
documents, whose data the comparability checks have already compared. Verdicts
of a samples file other than the one the side reads (an older generation run:
the results file's ``config.judge.samples_files``) are stale and left out with
a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opinbench.errors import DataError
from opinbench.judging import registry
from opinbench.runs import JudgeFiles, Run, judge_files, read_rows

log = logging.getLogger("opinbench.regress")

# Settings-file keys that name default judges rather than shape the prompt or the parse
# (the judge actually used is ``provider``/``model``); the control set does not touch sample verdicts.
_NOT_PROMPT = ("judge", "offline_judge", "moderator", "offline_moderator", "control")


@dataclass
class JudgeValues:
    """One judge kind on one side (see the module docstring)."""

    kind: str
    metric: str
    settings: dict[str, Any]
    source: str = ""
    items: dict[str, dict[str, dict[int, int]]] = field(default_factory=dict)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def judge_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable part of a judge results file's ``config.judge``.

    >>> a = judge_settings({"provider": "openai", "model": "m", "prompt_mode": "endpoint",
    ...                     "settings": {"template_sha256": "x", "settings": {"version": 1}}})
    >>> a == {"provider": "openai", "model": "m", "prompt_mode": "endpoint", "overrides": None, "prompts": {}}
    True
    """
    prompts: dict[str, str] = {}
    if config.get("prompt_mode") != "endpoint":  # a moderation endpoint takes no prompt of ours
        described = dict(config.get("families") or {})  # faithfulness: one judge prompt per task family
        if isinstance(config.get("settings"), dict):  # moderation: one
            described["moderation"] = config["settings"]
        for name, d in sorted(described.items()):
            core = {k: v for k, v in (d.get("settings") or {}).items() if k not in _NOT_PROMPT}
            prompts[name] = _digest({"template_sha256": d.get("template_sha256"), "settings": core})
    return {
        "provider": config.get("provider"),
        "model": config.get("model"),
        "prompt_mode": config.get("prompt_mode"),
        "overrides": config.get("overrides"),
        "prompts": prompts,
    }


def settings_difference(base: Mapping[str, Any], cand: Mapping[str, Any]) -> str | None:
    """The first judge setting that differs, in words; None if the judges are the same.

    Prompts are compared for the task families both sides judged.
    """
    for key in ("provider", "model", "prompt_mode", "overrides"):
        if base.get(key) != cand.get(key):
            return f"{key} {base.get(key)!r} in the baseline but {cand.get(key)!r} in the candidate"
    pa, pb = base.get("prompts") or {}, cand.get("prompts") or {}
    for name in sorted(set(pa) & set(pb)):
        if pa[name] != pb[name]:
            return f"the {name} judge prompt (template or settings; digest {pa[name]} vs {pb[name]})"
    return None


def _judged_files(results: dict[str, Any]) -> set[str] | None:
    files = ((results.get("config") or {}).get("judge") or {}).get("samples_files")
    return {Path(str(f)).name for f in files} if isinstance(files, list) else None


def read_judge(run: Run, files: JudgeFiles, doc_keys: Mapping[str, Mapping[str, str]]) -> JudgeValues | None:
    """One judge kind's verdicts in ``run``; ``doc_keys``: task -> lm-eval ``doc_id`` -> document id
    (the tasks the side holds). None (logged) for a judge kind regress does not test.

    Raises:
        DataError: no results file beside the verdicts (the judge's settings are unknown), a
            verdicts file that is not JSON lines, or a verdict naming a document the samples lack.
    """
    entry = registry.JUDGES.get(files.kind)  # the metric tested, the verdict field holding its 0/1
    if entry is None:
        log.info("%s: judge %s has no regression metric, left out", files.verdicts, files.kind)
        return None
    metric, value_field = entry.metric.key, entry.verdict_field
    if files.results is None:
        raise DataError(
            f"no results_judge-{files.kind}_<timestamp>.json of the same timestamp beside it: "
            "the judge's settings are unknown",
            file=files.verdicts,
        )
    try:
        results = json.loads(files.results.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read: {err}", file=files.results) from None
    judge_config = (results.get("config") or {}).get("judge") if isinstance(results, dict) else None
    if not isinstance(judge_config, dict):
        raise DataError("no config.judge in this judge results file", file=files.results)
    judged = _judged_files(results)
    out = JudgeValues(files.kind, metric, judge_settings(judge_config), files.verdicts.name)
    stale: set[str] = set()
    for row in read_rows(files.verdicts):
        v = row.data
        if not isinstance(v, dict) or v.get("type", "sample") != "sample":
            continue  # the faithfulness judge's control items are not the model's
        task = str(v.get("task"))
        if task not in doc_keys:
            continue
        if judged is not None and run.samples_files[task].name not in judged:
            stale.add(task)
            continue
        if v.get("status") != "judged":
            continue
        key = doc_keys[task].get(str(v.get("doc_id")))
        if key is None:
            raise DataError(
                f"verdict for doc_id {v.get('doc_id')} of task {task}, which its samples file does not hold",
                file=files.verdicts,
                key=row.key,
            )
        out.items.setdefault(task, {}).setdefault(key, {})[int(v.get("repeat") or 0)] = int(bool(v.get(value_field)))
    for task in sorted(stale):
        log.warning(
            "%s: judged another samples file of task %s than %s (stale verdicts), left out",
            files.verdicts, task, run.samples_files[task].name,
        )
    return out


def read_judges(run: Run, doc_keys: Mapping[str, Mapping[str, str]]) -> dict[str, JudgeValues]:
    """``{kind: JudgeValues}`` of every judge regress tests that judged ``run`` (see `read_judge`)."""
    out = {}
    for kind, files in judge_files(run).items():
        jv = read_judge(run, files, doc_keys)
        if jv is not None:
            out[kind] = jv
    return out
