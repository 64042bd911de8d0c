"""The one check of a task's settings (its YAML ``metadata`` merged with ``--metadata``).

Used twice, with the same rules, so that a mistake is one clear line:

* by the tasks' dataset hooks (`validated`), so that plain ``lm_eval`` gets a short
  `ConfigError` instead of a silent default or a deep traceback;
* by ``opinbench eval`` before lm-eval starts (`check`, ``strict=True``), so that a
  mistake costs no model load.

What a task accepts is derived, not listed: the keyword arguments of its dataset hook
plus the loader options of its data set (`opinbench.data.registry.DataSet.options`),
plus the keys lm-eval itself puts into ``metadata`` (`LM_EVAL_KEYS`).

lm-eval hands a hook everything at once: the YAML metadata, the ``--model_args`` keys
(``pretrained``, ``dtype``, ...) and ``--metadata``. A hook cannot tell a model argument
from a misspelled setting, so inside a hook (``strict=False``) an unknown key is only an
error when it is close to an accepted one (``groupz`` for ``groups``); ``opinbench eval``
knows which keys the user passed with ``--metadata`` and refuses every unknown one.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opinbench.data import registry
from opinbench.errors import ConfigError

# Keys lm-eval itself writes into a task's metadata (or that its YAMLs conventionally carry).
LM_EVAL_KEYS = frozenset({"version", "config_source", "_metadata", "num_fewshot"})

# Which data set kind each hook reads (the data set named by ``data`` must have it).
_KINDS = {"distribution": "distribution", "answer_docs": "answers"}


def same_settings_as(target: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a thin hook (``cot.load_dataset(**kwargs)``) as taking the settings of ``target``."""

    def mark(hook: Callable[..., Any]) -> Callable[..., Any]:
        hook.settings_of = target  # type: ignore[attr-defined]
        return hook

    return mark


def _target(hook: Callable[..., Any]) -> Callable[..., Any]:
    hook = getattr(hook, "settings_of", hook)
    return inspect.unwrap(hook)


def hook_parameters(hook: Callable[..., Any]) -> dict[str, Any]:
    """The named keyword arguments of a dataset hook, with their defaults."""
    return {
        name: p.default
        for name, p in inspect.signature(_target(hook)).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def accepted_keys(hook: Callable[..., Any], data: str | None) -> set[str]:
    """Every metadata key a task with this hook and data set accepts."""
    keys = set(hook_parameters(hook)) | set(LM_EVAL_KEYS)
    if data in registry.DATASETS:
        keys |= set(registry.get(data).options)
    return keys


def _unknown_key_error(task: str, key: str, accepted: set[str], close: list[str]) -> ConfigError:
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    ours = ", ".join(sorted(accepted - LM_EVAL_KEYS))
    return ConfigError(f"{task}: unknown metadata key {key!r}{hint}; this task accepts: {ours}")


def _check_values(task: str, hook: Callable[..., Any], settings: Mapping[str, Any]) -> None:
    from opinbench.prompts.steering import check_steering

    params = hook_parameters(hook)
    get = lambda k: settings.get(k, params.get(k))  # noqa: E731 - the value the hook will see
    data = get("data")
    if data is not None:
        ds = registry.get(data)  # unknown data set: ConfigError naming the known ones
        kind = _KINDS.get(_target(hook).__module__.rsplit(".", 1)[-1])
        if kind == "distribution" and ds.kind != "distribution":
            raise ConfigError(f"{task}: {data!r} is not a distribution data set; these are: "
                              f"{', '.join(registry.names(kind='distribution'))}")
        if kind == "answers" and not ds.has_answers:
            raise ConfigError(f"{task}: {data!r} has no answers; these do: {', '.join(registry.names(answers=True))}")
    if "steering" in params:
        try:
            check_steering(get("steering"))
        except ConfigError as err:
            raise ConfigError(f"{task}: {err}") from None
    if "split" in params:
        split = get("split")
        allowed = ("train", "test", "all") + ((None, "") if params["split"] is None else ())
        if split not in allowed:
            raise ConfigError(f"{task}: unknown split {split!r}: split must be one of {', '.join(s for s in allowed if s)}")
    for key, low in (("seed", 0), ("split_seed", 0), ("history", 0), ("n_boot", 1), ("human_resamples", 0)):
        value = get(key)
        if key in params and value is not None:
            try:
                ok = int(value) == float(value) and int(value) >= low
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ConfigError(f"{task}: {key} must be a whole number >= {low}, got {value!r}")
    fraction = get("test_fraction")
    if "test_fraction" in params and fraction is not None:
        try:
            ok = 0 < float(fraction) < 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"{task}: test_fraction must be between 0 and 1, got {fraction!r}")
    if data is not None:
        _check_source(task, data, get("source"), get("data_dir"), settings)


def _check_source(task: str, data: str, source: Any, data_dir: Any, settings: Mapping[str, Any]) -> None:
    if source:
        if not Path(os.fspath(source)).expanduser().exists():
            raise ConfigError(f"{task}: source {str(source)!r} does not exist")
    else:
        try:
            registry.default_source(data, data_dir)
        except ConfigError as err:
            raise ConfigError(f"{task}: {err}") from None
    missing = registry.missing_options(data, registry.options_of(data, settings))
    if missing:
        key, what = next(iter(missing.items()))
        raise ConfigError(f"{task}: {data} needs {what}: pass --metadata '{{\"{key}\": \"/path/to/file\"}}'")


def check(
    task: str,
    hook: Callable[..., Any],
    settings: Mapping[str, Any],
    *,
    strict: bool = True,
    keys: Any = None,
) -> None:
    """Raise a one-line `ConfigError` for a setting the task cannot use.

    Args:
        task: the task name, for the message.
        hook: the task's ``custom_dataset`` function.
        settings: everything the hook will receive (YAML metadata and ``--metadata`` merged).
        strict: refuse every unknown key among ``keys``; otherwise only those close to
            an accepted key (the hook cannot tell them from ``--model_args`` keys).
        keys: the keys to check for being known (default: all of ``settings``).
    """
    accepted = accepted_keys(hook, settings.get("data", hook_parameters(hook).get("data")))
    for key in settings if keys is None else keys:
        if key in accepted:
            continue
        close = difflib.get_close_matches(str(key), sorted(accepted - LM_EVAL_KEYS), n=1, cutoff=0.75)
        if strict or close:
            raise _unknown_key_error(task, str(key), accepted, close)
    _check_values(task, hook, settings)


def validated(hook: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a ``custom_dataset`` hook so that it checks its settings first (non-strict).

    The error is raised ``from None``: lm-eval prints it at the end of its own stack,
    without a second traceback of opinbench's code around it.
    """

    @functools.wraps(hook)
    def wrapper(**settings: Any) -> Any:
        task = str(settings.get("config_source") and Path(str(settings["config_source"])).stem or hook.__module__)
        try:
            check(task, hook, settings, strict=False)
        except ConfigError as err:
            raise ConfigError(str(err)) from None
        return hook(**settings)

    return wrapper
