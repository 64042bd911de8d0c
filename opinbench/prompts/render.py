"""Render distribution-task prompts from records (Jinja2 templates in ``templates/``).

Four steering formats, as in OpinionQA / SubPOP (`opinbench.prompts.steering`:
the formats, their texts and the rule that the overall population is unsteered).
For a Democrat asked one question:

``unsteered`` (the overall population)::

    Question: Would you favor or oppose ...?
    A. Favor
    B. Oppose
    C. Refused
    Answer as a choice between A.,B.,C.

    Answer:

``qa``: the same block, preceded by::

    Question: In politics today, do you consider yourself a
    A. Republican
    B. Democrat
    C. Independent
    D. Something else

    Answer: B. Democrat

    Answer the following question keeping in mind your previous answers.

``bio``: preceded by::

    Below you will be asked to provide a short description of your political affiliation and then answer some questions.
    Description: In politics today, I consider myself a Democrat.

``portray``: preceded by::

    Answer the following question as if in politics today, you considered yourself a Democrat.

Options are lettered A, B, C, ... and include every answer the survey offered,
non-substantive ones ("Refused") too; the prompt ends where the answer letter
comes, right after ``Answer:``. Scoring renormalises over the letters of the
ordinal options only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jinja2

from opinbench.data.records import LETTERS, DistributionRecord
from opinbench.prompts.steering import steering_context


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt and the letters that stand for the record's options."""

    text: str
    letters: tuple[str, ...]  # one per option, in option order
    n_ordinal: int  # the first n_ordinal letters are the ordinal options


@cache
def template_env() -> jinja2.Environment:
    """The Jinja2 environment of every prompt template in ``templates/``."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("opinbench.prompts", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def render_distribution_prompt(record: DistributionRecord, steering: str = "qa") -> Prompt:
    """The prompt for one (question, group) record in the given steering format.

    The overall population (``attribute == "OVERALL"``) is always unsteered
    (`opinbench.prompts.steering.steering_for`).
    """
    letters = tuple(LETTERS[: len(record.options)])
    context = steering_context(record, steering) | {
        "question": record.question,
        "lettered": list(zip(letters, record.options)),
        "letters": letters,
    }
    text = template_env().get_template(f"{context['steering']}.j2").render(**context).rstrip()
    return Prompt(text=text, letters=letters, n_ordinal=len(record.ordinal))
