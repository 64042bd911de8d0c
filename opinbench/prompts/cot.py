"""Prompts of the chain-of-thought and direct answer tasks (templates ``cot_*.j2``).

Every render function returns a `TaskPrompt`: the system message (or ``None``),
the user prompt, and the letters of the options in option order. Two formats:

* ``cot``: the model reasons, then answers. VK and OpinionQA end with
  ``Answer: <letter>``; the individual-level sets (Wahl-o-Mat, smartvote, ANES)
  with ``<reasoning>...</reasoning><answer>...</answer>``.
* ``direct``: the prompt ends with ``Answer:`` and the first token is scored.

Value Kaleidoscope, ``cot`` (the direct prompt is the steerable release's own,
``A. Support B. Oppose C. Either\\nAnswer:``)::

    Question: Given a situation and a relevant value, right, or duty, does the value/right/duty support or oppose the situation, or could it do either?

    Situation: Helping refugees
    Value/right/duty: Right to a safe environment

    A. Supports
    B. Opposes
    C. Either

    Think step by step about how the value/right/duty relates to the situation. Then give your final answer on the last line in the form "Answer: <letter>".

OpinionQA, ``cot`` with QA steering (the direct prompt is exactly the one of
``opinionqa_wd``, `opinbench.prompts.render.render_distribution_prompt`)::

    Question: In politics today, do you consider yourself a
    A. Republican
    B. Democrat
    ...
    Answer: B. Democrat

    Answer the following question keeping in mind your previous answers.
    Question: How safe, if at all, would you say your local community is from crime? Would you say it is
    A. Very safe
    ...
    E. Refused

    Think step by step about how you would answer this question. Then give your final answer on the last line in the form "Answer: <letter>".

Wahl-o-Mat, ``cot`` (system message: the data set's ``persona``, ``You are a German
voter.``; smartvote: ``You are a Swiss voter.``; ANES: ``You are an American voter.``;
only the country, as in the literature; who the individual is goes in the user
prompt, worded by the data set's ``identity`` function below)::

    You are the party SPD, answering the Wahl-o-Mat for the Bundestagswahl 2021.

    Thesis: Auf allen Autobahnen soll ein generelles Tempolimit gelten.
    Do you agree with this thesis?
    A. Yes
    B. Neutral
    C. No

    First explain your reasoning inside <reasoning></reasoning> tags. Then give your answer (Yes, Neutral, No) inside <answer></answer> tags.

With ``history > 0`` the individual's answers to some of its *train* questions
are listed after the first line ("Your answers to some other theses: ...").

Which family renders a data set, and its persona and question wording, are the
data set's prompt profile in the registry (`opinbench.data.registry.Profile`);
`render_record` picks the family from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opinbench.data import registry
from opinbench.data.records import LETTERS, AnswerRecord, DistributionRecord
from opinbench.errors import ConfigError
from opinbench.prompts.render import render_distribution_prompt, template_env
from opinbench.prompts.steering import steering_context

FORMATS = ("cot", "direct")

# ideo5 codes of the 2022 ANES pilot (numeric release), from the note in
# opinbench/data/resources/anes_mapping_pilot_2022.yaml; the 2024 release has the labels.
_IDEO5 = {"1": "very liberal", "2": "liberal", "3": "moderate", "4": "conservative", "5": "very conservative"}
_GROUP_WORDS = {"Left": "on the left", "Center": "in the center", "Right": "on the right"}


@dataclass(frozen=True)
class TaskPrompt:
    """A rendered prompt: optional system message, user text, and the option letters."""

    system: str | None
    text: str
    letters: tuple[str, ...]


def _render(template: str, **context: Any) -> str:
    text = template_env().get_template(template).render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown prompt format {fmt!r}; choose one of {FORMATS}")


def _lettered(options: Sequence[str]) -> list[tuple[str, str]]:
    return list(zip(LETTERS, options))


# --------------------------------------------------------------------------- Value Kaleidoscope


def render_vk(record: AnswerRecord, fmt: str = "cot") -> TaskPrompt:
    """The VK prompt: situation (``question``) and value/right/duty (``subject``)."""
    _check_format(fmt)
    template = "cot_vk.j2" if fmt == "cot" else "cot_vk_direct.j2"
    if fmt == "direct" and tuple(record.options) != ("Supports", "Opposes", "Either"):
        raise ConfigError(
            f"the direct VK prompt has fixed options A. Support B. Oppose C. Either, not {record.options}"
        )
    text = _render(template, situation=record.question, vrd=record.subject, lettered=_lettered(record.options))
    return TaskPrompt(None, text, tuple(LETTERS[: len(record.options)]))


# --------------------------------------------------------------------------- OpinionQA


def render_opinionqa(record: DistributionRecord, fmt: str = "cot", steering: str = "qa") -> TaskPrompt:
    """The OpinionQA prompt for one (question, group); every option is lettered.

    ``direct`` is exactly the ``opinionqa_wd`` prompt, so the two tasks read the
    same first-token distribution; ``cot`` is that prompt with a reasoning
    instruction in place of the final ``Answer:`` (``cot_opinionqa.j2``).
    """
    _check_format(fmt)
    if fmt == "direct":
        p = render_distribution_prompt(record, steering)
        return TaskPrompt(None, p.text, p.letters)
    letters = tuple(LETTERS[: len(record.options)])
    context = steering_context(record, steering) | {
        "question": record.question,
        "lettered": list(zip(letters, record.options)),
        "letters": letters,
    }
    return TaskPrompt(None, _render("cot_opinionqa.j2", **context), letters)


# --------------------------------------------------------------------------- individuals


def wom_identity(record: AnswerRecord) -> str:
    """A Wahl-o-Mat party, with its long name where that says more, and the election."""
    longname = (record.meta or {}).get("party_longname")
    name = record.subject
    if longname and re.sub(r"\W", "", longname).casefold() != re.sub(r"\W", "", name).casefold():
        name = f"{name} ({longname})"
    where = f" for the {record.context}" if record.context else ""
    return f"You are the party {name}, answering the Wahl-o-Mat{where}."


def smartvote_identity(record: AnswerRecord) -> str:
    """A smartvote candidate by name (else number), party and election."""
    meta = record.meta or {}
    person = " ".join(p for p in (meta.get("firstname"), meta.get("lastname")) if p)
    who = f"You are {person}, a candidate" if person else f"You are candidate {record.subject}"
    party = f" of the party {meta['party']}" if meta.get("party") else ""
    where = f" in the {record.context}" if record.context else ""
    return f"{who}{party}{where}, answering the smartvote questionnaire."


def anes_identity(record: AnswerRecord) -> str:
    """An ANES respondent, with the self-described ideology where the release has one."""
    rid = record.subject.split(":", 1)[-1]
    survey = record.context or "ANES"
    text = f"You are respondent {rid} of the {survey} survey."
    raw = str((record.meta or {}).get("ideology") or "").strip()
    label = _IDEO5.get(raw) or (raw.casefold() if raw and not raw.lstrip("-").isdigit() else None)
    if label and label not in ("not sure", "no answer"):
        text += f" In general, you describe your political views as {label}."
    elif record.subject_group in _GROUP_WORDS:
        text += f" Politically, you place yourself {_GROUP_WORDS[record.subject_group]}."
    return text


def _individual_profile(record: AnswerRecord) -> registry.Profile:
    ds = registry.DATASETS.get(record.dataset)
    if ds is None or ds.profile.prompt != "individual":
        raise ConfigError(f"no individual-level prompt for data set {record.dataset!r}")
    return ds.profile


def identity(record: AnswerRecord) -> str:
    """Who the model is, in one or two sentences of the user prompt (the profile's ``identity``)."""
    fn = _individual_profile(record).identity_fn()
    return fn(record) if fn else f"You are {record.subject}."


def render_individual(
    record: AnswerRecord,
    fmt: str = "cot",
    *,
    system: str | None = None,
    history: Sequence[tuple[str, str]] = (),
) -> TaskPrompt:
    """The prompt for one (individual, question) of Wahl-o-Mat, smartvote or ANES.

    Args:
        record: the individual's gold answer to the question.
        fmt: ``cot`` or ``direct``.
        system: the system message; default the data set's ``persona``
            (`opinbench.data.registry.Profile`). ``""`` gives none.
        history: (question, answer) pairs of the same individual from its train
            split, shown before the question.
    """
    _check_format(fmt)
    profile = _individual_profile(record)
    template = "cot_individual.j2" if fmt == "cot" else "cot_individual_direct.j2"
    text = _render(
        template,
        identity=identity(record),
        history=list(history),
        question=record.question,
        options=list(record.options),
        lettered=_lettered(record.options),
        item_label=profile.item_label,
        item_plural=profile.item_plural,
        ask=profile.ask,
    )
    system = profile.persona if system is None else system
    return TaskPrompt(system or None, text, tuple(LETTERS[: len(record.options)]))


# --------------------------------------------------------------------------- by profile


def render_record(
    data: str,
    record: AnswerRecord,
    dist: DistributionRecord | None,
    fmt: str = "cot",
    *,
    steering: str = "qa",
    system: str | None = None,
    history: Sequence[tuple[str, str]] = (),
) -> TaskPrompt:
    """The prompt of one answer-task record of data set ``data``, in the family its
    profile names (`opinbench.data.registry.Profile.prompt`).

    ``dist`` is the record's distribution (``steered`` prompts are rendered from
    it), ``steering`` its steering format; ``system`` and ``history`` are for
    ``individual`` prompts (`render_individual`).
    """
    family = registry.get(data).profile.prompt
    if family == "situation":
        return render_vk(record, fmt)
    if family == "steered":
        if dist is None:
            raise ConfigError(f"{data}: a steered prompt is rendered from a distribution record")
        return render_opinionqa(dist, fmt, steering)
    return render_individual(record, fmt, system=system, history=history)
