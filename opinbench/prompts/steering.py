"""Steering: how a prompt tells the model which subpopulation it answers for.

Four formats, as in OpinionQA / SubPOP (examples in `opinbench.prompts.render`):
``qa`` (the demographic question asked and answered first), ``bio`` (a
first-person description), ``portray`` (an instruction) and ``unsteered``. The
texts per demographic attribute are data (``steering.yaml`` beside this module).

The one rule every prompt kind follows: the overall population (attribute
``OVERALL``) has no group to steer towards and always gets the unsteered prompt
(`steering_for`). The distribution prompts (``templates/qa.j2``, ``bio.j2``,
``portray.j2``, ``unsteered.j2``) and the OpinionQA reasoning prompt
(``cot_opinionqa.j2``, which includes them) take their variables from
`steering_context`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from opinbench.data.groups import OVERALL_ATTRIBUTE
from opinbench.data.records import LETTERS, DistributionRecord
from opinbench.errors import ConfigError

STEERING_FORMATS = ("qa", "bio", "portray", "unsteered")


def check_steering(steering: str) -> str:
    """``steering`` if it is a known format, else a `ConfigError` naming the formats."""
    if steering not in STEERING_FORMATS:
        raise ConfigError(f"steering must be one of {STEERING_FORMATS}, got {steering!r}")
    return steering


def steering_for(record: DistributionRecord, steering: str) -> str:
    """The format the prompt of ``record`` uses: ``steering``, or ``unsteered`` for the overall population."""
    check_steering(steering)
    return "unsteered" if record.attribute == OVERALL_ATTRIBUTE else steering


@cache
def steering_texts() -> dict[str, dict[str, Any]]:
    """``steering.yaml``: per attribute, the ``qa`` question and its ``options``, ``bio``, ``portray``, ``aliases``."""
    text = resources.files("opinbench.prompts").joinpath("steering.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def steer_context(attribute: str, group: str) -> dict[str, Any]:
    """Template variables of the steering text for one (attribute, group), shared by all prompt kinds."""
    texts = steering_texts()
    if attribute not in texts:
        raise ConfigError(
            f"no steering text for attribute {attribute!r}; known: {', '.join(sorted(texts))} "
            "(add it to opinbench/prompts/steering.yaml)"
        )
    steer = texts[attribute]
    label = (steer.get("aliases") or {}).get(group, group)
    options = list(steer["options"])
    if label not in options:
        options.append(label)  # a group the survey's steering question did not list
    return {
        "steer": steer,
        "group_label": label,
        "steer_lettered": list(zip(LETTERS, options)),
        "steer_letter": LETTERS[options.index(label)],
    }


def steering_context(record: DistributionRecord, steering: str) -> dict[str, Any]:
    """``steering`` (the template to use, see `steering_for`) and, unless unsteered, the steering text's variables."""
    fmt = steering_for(record, steering)
    context: dict[str, Any] = {"steering": fmt}
    if fmt != "unsteered":
        context |= steer_context(record.attribute, record.group)
    return context
