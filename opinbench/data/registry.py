"""Data sets by name, each described once: what it holds, where its files live under the
data directory, which loader reads them and with which options.

Everything that needs to know about a data set (the tasks, `opinbench data`, the
training configs) asks here instead of keeping its own list of names:

* `get` / `names`: the description (`DataSet`) of one data set, and the names of
  those with a given kind, family or individuals;
* `load`: resolve the source (an explicit path, else the default place under the
  data directory) and call the loader with the data set's options;
* `answer_records`: the records the answer tasks (``*_cot`` / ``*_direct``) read,
  from an answer data set or, through its converter, a distribution data set;
* `profile`: how the answer tasks prompt for and score its records (`Profile`:
  persona, how a question is introduced, label set, binary labels, explanation
  field), read by the prompts, the documents, the metrics and training;
* `task_prefixes`: how its task names begin (lm-eval's log lines are matched on them).

Adding a data set = its loader, its entry in `DATASETS` (with its `Profile`) and its
task folder under ``tasks_yaml/`` (recipe: ``tests/test_data_recipe.py``).

Loaders are imported lazily so that `opinbench --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from opinbench.errors import ConfigError

DATA_DIR_ENV = "OPINBENCH_DATA_DIR"

KINDS = ("distribution", "answer")
FAMILIES = ("survey", "vk")


PROMPTS = ("situation", "steered", "individual")


def _import(ref: str) -> Callable[..., Any]:
    module, _, fn = ref.partition(":")
    return getattr(importlib.import_module(module), fn)


@dataclass(frozen=True)
class Profile:
    """How the answer tasks (``*_cot`` / ``*_direct``) prompt for and score one data set's records.

    What every data set says here was, before, an ``if dataset == ...`` in the
    prompts, the task documents, the metrics and training.

    Attributes:
        prompt: the prompt family (`opinbench.prompts.cot.render_record`): ``situation``
            (a situation and a value, right or duty: Value Kaleidoscope), ``steered``
            (a survey question to a steered group, rendered from the group's
            distribution record: OpinionQA), ``individual`` (an individual answers a
            question: Wahl-o-Mat, smartvote, ANES; reasoning and answer in
            ``<reasoning>``/``<answer>`` tags, the others end with ``Answer: <letter>``).
        persona: the default system message of ``individual`` prompts (the country
            only, as in the literature); ``None``: no system message.
        item_label, item_plural, ask: how an ``individual`` prompt introduces the
            question ("Thesis", "theses", "Do you agree with this thesis?").
        identity: ``"module:function"`` saying, from a record, who the individual is
            (the first sentence of the user prompt); ``None``: "You are <subject>."
        letter_labels: the classification metrics' labels are the option letters,
            not the option texts (OpinionQA: every question has its own options).
        binary_labels: the label pair of the ``*_binary`` metrics, over the documents
            whose gold answer is one of them (VK: Supports/Opposes; Either left out).
        breakdown: documents carry the group's ``attribute`` and ``group``, and
            accuracy is also reported per attribute (``acc|<ATTR>``).
        explanation_field: the records' ``meta`` key holding a human rationale
            (CoT training with ``rationales: human``); ``None``: none by default.
    """

    prompt: str = "individual"
    persona: str | None = None
    item_label: str = "Question"
    item_plural: str = "questions"
    ask: str = ""
    identity: str | None = None
    letter_labels: bool = False
    binary_labels: tuple[str, ...] = ()
    breakdown: bool = False
    explanation_field: str | None = None

    def __post_init__(self) -> None:
        if self.prompt not in PROMPTS:
            raise ValueError(f"prompt must be one of {PROMPTS}, not {self.prompt!r}")
        object.__setattr__(self, "binary_labels", tuple(self.binary_labels))

    @property
    def answer_tags(self) -> bool:
        """The CoT answer comes in ``<reasoning>``/``<answer>`` tags (else ``Answer: <letter>``)."""
        return self.prompt == "individual"

    def identity_fn(self) -> Callable[[Any], str] | None:
        return _import(self.identity) if self.identity else None


@dataclass(frozen=True)
class DataSet:
    """One data set.

    Attributes:
        name: the name tasks, configs and `opinbench data` use.
        kind: ``distribution`` (a group's answer distribution per question) or
            ``answer`` (one gold answer per subject and question).
        family: ``survey`` (survey questions to people or parties) or ``vk``
            (Value Kaleidoscope situations); the judges and the answer tasks
            read it from the documents.
        individuals: the records belong to individuals (party, candidate,
            respondent), split per individual and scored per individual.
        loader: ``"module:function"``, called as ``loader(source, **options)``.
        subpath: default location under the data directory.
        description: one line for ``opinbench data list``.
        options: the loader options a task may set, with the default the tasks
            use; ``None`` leaves the loader's own default.
        required: options that must be given, each with what it is (for the error).
        answers_from: ``"module:function"`` turning this distribution data set's
            records into (AnswerRecord, DistributionRecord) pairs, for the answer
            tasks; ``None`` when no answer task reads it as answers.
        shipped_tasks: the task folder has tasks named after it (``<name>_wd``,
            ``<name>_cot``, ``<name>_direct``), which `opinbench train` defaults to.
        profile: how the answer tasks prompt for and score its records (`Profile`).
        task_prefix: how its task names begin, before ``_`` (default: the name).
    """

    name: str
    kind: str
    family: str
    loader: str
    subpath: str
    description: str
    individuals: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    required: Mapping[str, str] = field(default_factory=dict)
    answers_from: str | None = None
    shipped_tasks: bool = True
    profile: Profile = field(default_factory=Profile)
    task_prefix: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, not {self.kind!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}, not {self.family!r}")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        object.__setattr__(self, "required", MappingProxyType(dict(self.required)))
        object.__setattr__(self, "task_prefix", self.task_prefix or self.name)

    def load_fn(self) -> Callable[..., list[Any]]:
        return _import(self.loader)

    @property
    def has_answers(self) -> bool:
        """Whether the answer tasks (``*_cot`` / ``*_direct``) can read this data set."""
        return self.kind == "answer" or self.answers_from is not None


_GROUPS = {"groups": "standard"}  # the 22 subpopulations of the paper, where the source has them
_VOTER = "opinbench.prompts.cot:{}_identity"  # who the individual is, worded in the prompts

DATASETS: dict[str, DataSet] = {
    d.name: d
    for d in [
        DataSet("opinionqa", "distribution", "survey", "opinbench.data.opinionqa:load_opinionqa",
                "opinionqa/human_resp", "OpinionQA (Pew ATP), human_resp release of tatsu-lab/opinions_qa",
                options=_GROUPS, answers_from="opinbench.data.opinionqa:opinionqa_answer_records",
                profile=Profile("steered", letter_labels=True, breakdown=True)),
        DataSet("opinionqa_steerable", "distribution", "survey", "opinbench.data.opinionqa:load_opinionqa_steerable",
                "opinionqa/steerable/steerable_test_opinionqa_small.json",
                "OpinionQA steerable JSON release (modular_pluralism)", options=_GROUPS, shipped_tasks=False),
        DataSet("subpop_train", "distribution", "survey", "opinbench.data.subpop:load_subpop_train", "subpop",
                "SubPOP-Train (ATP), public release layout", options=_GROUPS, task_prefix="subpop"),
        DataSet("subpop_eval", "distribution", "survey", "opinbench.data.subpop:load_subpop_eval", "subpop",
                "SubPOP-Eval (GSS), public release layout", options=_GROUPS, task_prefix="subpop"),
        DataSet("vk", "answer", "vk", "opinbench.data.vk:load_vk", "value_kaleidoscope",
                "Value Kaleidoscope steerable release / ValuePrism layout",
                profile=Profile("situation", binary_labels=("Supports", "Opposes"), explanation_field="explanation")),
        DataSet("wom", "answer", "survey", "opinbench.data.wahlomat:load_wahlomat", "wahl-o-mat",
                "Wahl-o-Mat, qual-o-mat data layout (parties' answers to theses)",
                individuals=True, options={"elections": None},
                profile=Profile("individual", persona="You are a German voter.", item_label="Thesis",
                                item_plural="theses", ask="Do you agree with this thesis?",
                                identity=_VOTER.format("wom"), explanation_field="comment")),
        DataSet("smartvote", "answer", "survey", "opinbench.data.smartvote:load_smartvote", "smartvote",
                "smartvote questionnaire and candidate answer export",
                individuals=True, options={"answers": None},
                required={"answers": "the candidates' answers, which no public copy has "
                                     "(layout: opinbench.data.smartvote)"},
                profile=Profile("individual", persona="You are a Swiss voter.",
                                identity=_VOTER.format("smartvote"))),
        DataSet("anes", "answer", "survey", "opinbench.data.anes:load_anes", "anes",
                "ANES respondent-level pilot studies, recoded by a shipped mapping",
                individuals=True, options={"scheme": "conservative", "releases": None},
                profile=Profile("individual", persona="You are an American voter.",
                                identity=_VOTER.format("anes"))),
    ]
}


def register(ds: DataSet) -> DataSet:
    """Add a data set defined outside this file (a plugin, a test); a name already taken is refused."""
    if ds.name in DATASETS:
        raise ConfigError(f"data set {ds.name!r} is already registered")
    DATASETS[ds.name] = ds
    return ds


def get(name: str) -> DataSet:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def family_of(dataset: str | None) -> str:
    """The family of the data set a record or document names; ``survey`` for a name the registry
    does not hold (answers derived from another data set, a test's own records)."""
    ds = DATASETS.get(dataset) if isinstance(dataset, str) else None
    return ds.family if ds is not None else "survey"


def names(
    *,
    kind: str | None = None,
    individuals: bool | None = None,
    answers: bool | None = None,
    shipped_tasks: bool | None = None,
) -> tuple[str, ...]:
    """Names of the data sets that match every filter given, in registry order.

    ``answers=True`` selects those the answer tasks can read (`DataSet.has_answers`).

    >>> names(individuals=True)
    ('wom', 'smartvote', 'anes')
    """
    return tuple(
        d.name
        for d in DATASETS.values()
        if (kind is None or d.kind == kind)
        and (individuals is None or d.individuals == individuals)
        and (answers is None or d.has_answers == answers)
        and (shipped_tasks is None or d.shipped_tasks == shipped_tasks)
    )


def profile(name: str) -> Profile:
    """The answer-task profile of data set ``name``; the default `Profile` for a name not
    registered here (documents of such a data set are scored on option texts, no binary metrics).

    A pure function of the name, so that scoring (`opinbench.metrics`) reads a logged
    document's data set without a field of its own in the document (which would change
    lm-eval's ``doc_hash``).

    >>> profile("opinionqa").letter_labels, profile("vk").binary_labels
    (True, ('Supports', 'Opposes'))
    """
    ds = DATASETS.get(name)
    return ds.profile if ds else Profile()


def task_prefixes() -> tuple[str, ...]:
    """How the task names of every registered data set begin (``<prefix>_...``).

    >>> "subpop" in task_prefixes() and "wom" in task_prefixes()
    True
    """
    return tuple(dict.fromkeys(d.task_prefix for d in DATASETS.values()))


def holds_individuals(name: str) -> bool:
    """Whether records of data set ``name`` belong to individuals (False for a name not registered)."""
    ds = DATASETS.get(name)
    return bool(ds and ds.individuals)


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: ``explicit``, else ``$OPINBENCH_DATA_DIR``, else the fetch cache."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    from opinbench.data.fetch import cache_dir

    return cache_dir()


def default_source(name: str, explicit_dir: str | os.PathLike | None = None) -> Path:
    """Where data set ``name`` is expected, with a clear error if it is not there."""
    ds = get(name)
    root = data_dir(explicit_dir)
    path = root / ds.subpath
    if not path.exists():
        raise ConfigError(
            f"{name}: {path} does not exist. Point {DATA_DIR_ENV} at the folder that holds "
            f"{ds.subpath!r} (e.g. ../shared/data), pass --source, or run `opinbench data fetch {name}`."
        )
    return path


def source_path(name: str, source: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None) -> Path:
    """``source`` if given, else the default place of ``name`` under the data directory."""
    return Path(source) if source else default_source(name, data_dir)


def options_of(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The loader options of data set ``name`` (`DataSet.options`) that ``settings`` (task metadata) sets."""
    return {k: settings[k] for k in get(name).options if k in settings}


def missing_options(name: str, options: Mapping[str, Any]) -> dict[str, str]:
    """The required options of ``name`` that ``options`` leaves empty, with what each is."""
    return {k: why for k, why in get(name).required.items() if not options.get(k)}


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ("__seq__", tuple(_freeze(v) for v in value))
    if isinstance(value, dict):
        return ("__map__", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__seq__":
        return [_thaw(v) for v in value[1]]
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__map__":
        return {k: _thaw(v) for k, v in value[1]}
    return value


@lru_cache(maxsize=16)
def _load_cached(name: str, path: str, options: tuple[tuple[str, Any], ...]) -> tuple[Any, ...]:
    return tuple(get(name).load_fn()(Path(path), **{k: _thaw(v) for k, v in options}))


def load(
    name: str,
    source: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    *,
    cache: bool = False,
    **options: Any,
) -> list[Any]:
    """The records of data set ``name``.

    Args:
        source: file or folder in the release format (default: its place under
            the data directory, `default_source`).
        data_dir: the data directory (default: ``$OPINBENCH_DATA_DIR``, else the fetch cache).
        cache: keep the last 16 loads in memory, keyed by the resolved path and
            options (the tasks load one source several times: once per task,
            split and format). Not with ``skips``, whose counts the caller reads.
        options: loader options, over the data set's defaults (`DataSet.options`);
            an option left at ``None`` takes the loader's own default.
    """
    ds = get(name)
    path = source_path(name, source, data_dir)
    kwargs = {k: v for k, v in {**ds.options, **options}.items() if v is not None}
    if cache and "skips" not in kwargs:
        return list(_load_cached(name, str(path), tuple(sorted((k, _freeze(v)) for k, v in kwargs.items()))))
    return ds.load_fn()(path, **kwargs)


def answer_records(
    name: str,
    source: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    *,
    split_seed: int = 0,
    test_fraction: float | None = None,
    cache: bool = False,
    **options: Any,
) -> list[tuple[Any, Any]]:
    """(AnswerRecord, DistributionRecord or None) pairs of a data set the answer tasks read.

    ``split_seed`` and ``test_fraction`` (``None``: the loader's default) choose
    the train/test split: the loader's per-individual split for answer data, the
    question split of `DataSet.answers_from` for distribution data.
    """
    ds = get(name)
    if not ds.has_answers:
        raise ConfigError(f"unknown answer data set {name!r}; known: {', '.join(names(answers=True))}")
    split: dict[str, Any] = {"seed": int(split_seed)}
    if test_fraction is not None:
        split["test_fraction"] = float(test_fraction)
    if ds.kind == "answer":
        return [(r, None) for r in load(name, source, data_dir, cache=cache, **options, **split)]
    distributions = load(name, source, data_dir, cache=cache, **options)
    return list(_import(ds.answers_from)(distributions, **split))  # type: ignore[arg-type]
