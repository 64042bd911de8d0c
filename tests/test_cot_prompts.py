"""Golden prompts of the answer tasks: a stray space changes first-token probabilities."""

from __future__ import annotations

import pytest

from opinbench.answers import extract_answer
from opinbench.data.records import AnswerRecord, DistributionRecord
from opinbench.errors import ConfigError
from opinbench.prompts.cot import identity, render_individual, render_opinionqa, render_vk
from opinbench.prompts.render import render_distribution_prompt

VK = AnswerRecord(
    id="vk:1", dataset="vk", subject="Right to a safe environment", subject_group=None, question_key="s",
    question="Helping refugees", options=("Supports", "Opposes", "Either"), answer="Either", split="test",
)
OQA = DistributionRecord(
    id="opinionqa:Q:POLPARTY:Democrat", dataset="opinionqa", question_key="Q",
    question="Would you favor or oppose X?", options=("Favor", "Oppose", "Refused"), ordinal=(1.0, 2.0),
    attribute="POLPARTY", group="Democrat", distribution=(0.7, 0.3), n=100.0,
)
WOM = AnswerRecord(
    id="wom:2021/deutschland:1:3", dataset="wom", subject="SPD", subject_group="Left", question_key="2021/deutschland/3",
    question="Auf allen Autobahnen soll ein generelles Tempolimit gelten.", options=("Yes", "Neutral", "No"),
    answer="Yes", split="test", context="Bundestagswahl 2021",
    meta={"individual": "2021/deutschland:SPD", "party_longname": "Sozialdemokratische Partei Deutschlands"},
)
SV = AnswerRecord(
    id="smartvote:7:1", dataset="smartvote", subject="7", subject_group="Right", question_key="1",
    question="Should Switzerland join the EU?", options=("Yes", "No"), answer="No", split="test",
    context="Elections to the National Council 2015", meta={"firstname": "Anna", "lastname": "Muster", "party": "SVP"},
)
ANES = AnswerRecord(
    id="anes:pilot_2022:5:x", dataset="anes", subject="pilot_2022:5", subject_group="Right", question_key="x",
    question="Do you favor or oppose X?", options=("Yes", "Neutral", "No"), answer="No", split="test",
    context="ANES 2022 pilot", meta={"ideology": "4"},
)

VK_COT = """Question: Given a situation and a relevant value, right, or duty, does the value/right/duty support or oppose the situation, or could it do either?

Situation: Helping refugees
Value/right/duty: Right to a safe environment

A. Supports
B. Opposes
C. Either

Think step by step about how the value/right/duty relates to the situation. Then give your final answer on the last line in the form "Answer: <letter>"."""

VK_DIRECT = """Question: given a situation and a relevant value, right, or duty, does the value/right/duty support, oppose, or either support or oppose the situation?

Situation: Helping refugees

Value/right/duty: Right to a safe environment

A. Support B. Oppose C. Either
Answer:"""

OQA_COT = """Question: In politics today, do you consider yourself a
A. Republican
B. Democrat
C. Independent
D. Something else

Answer: B. Democrat

Answer the following question keeping in mind your previous answers.
Question: Would you favor or oppose X?
A. Favor
B. Oppose
C. Refused

Think step by step about how you would answer this question. Then give your final answer on the last line in the form "Answer: <letter>"."""

WOM_COT = """You are the party SPD (Sozialdemokratische Partei Deutschlands), answering the Wahl-o-Mat for the Bundestagswahl 2021.

Thesis: Auf allen Autobahnen soll ein generelles Tempolimit gelten.
Do you agree with this thesis?
A. Yes
B. Neutral
C. No

First explain your reasoning inside <reasoning></reasoning> tags. Then give your answer (Yes, Neutral, No) inside <answer></answer> tags."""

WOM_DIRECT_HISTORY = """You are the party SPD (Sozialdemokratische Partei Deutschlands), answering the Wahl-o-Mat for the Bundestagswahl 2021.

Your answers to some other theses:
- Thesis one. -> Yes
- Thesis two. -> No

Thesis: Auf allen Autobahnen soll ein generelles Tempolimit gelten.
Do you agree with this thesis?
A. Yes
B. Neutral
C. No
Answer with the letter of your choice.

Answer:"""


def test_vk():
    p = render_vk(VK, "cot")
    assert (p.system, p.text, p.letters) == (None, VK_COT, ("A", "B", "C"))
    assert render_vk(VK, "direct").text == VK_DIRECT


def test_vk_direct_is_the_release_prompt(shared_data):
    """The direct VK prompt is the steerable release's own `input`, character for character."""
    import json

    from opinbench.data import registry

    rows = json.loads((shared_data / "value_kaleidoscope" / "steerable_test_valuekaleidoscope_small.json").read_text())
    records = {r.meta["id"]: r for r in registry.load("vk", shared_data / "value_kaleidoscope")}
    for row in rows[:200]:
        assert render_vk(records[row["id"]], "direct").text == row["input"].strip()


def test_opinionqa():
    assert render_opinionqa(OQA, "cot").text == OQA_COT
    direct = render_opinionqa(OQA, "direct")
    assert direct.text == render_distribution_prompt(OQA, "qa").text  # same prompt as opinionqa_wd
    assert direct.letters == ("A", "B", "C")
    overall = DistributionRecord(**{**OQA.__dict__, "attribute": "OVERALL", "group": "Overall"})
    assert render_opinionqa(overall, "cot").text.startswith("Question: Would you favor or oppose X?")
    assert "political affiliation" in render_opinionqa(OQA, "cot", steering="bio").text
    with pytest.raises(ConfigError):
        render_opinionqa(OQA, "cot", steering="nope")


def test_individuals():
    p = render_individual(WOM, "cot")
    assert (p.system, p.text) == ("You are a German voter.", WOM_COT)
    p = render_individual(WOM, "direct", history=[("Thesis one.", "Yes"), ("Thesis two.", "No")])
    assert p.text == WOM_DIRECT_HISTORY
    sv = render_individual(SV, "cot")
    assert sv.system == "You are a Swiss voter."
    assert sv.text.startswith(
        "You are Anna Muster, a candidate of the party SVP in the Elections to the National Council 2015, "
        "answering the smartvote questionnaire.\n\nQuestion: Should Switzerland join the EU?\nA. Yes\nB. No\n"
    )
    assert "(Yes, No)" in sv.text
    an = render_individual(ANES, "cot")
    assert an.system == "You are an American voter."
    assert an.text.startswith(
        "You are respondent 5 of the ANES 2022 pilot survey. In general, you describe your political views as "
        "conservative.\n\nQuestion: Do you favor or oppose X?"
    )
    assert render_individual(WOM, "cot", system="").system is None
    assert render_individual(WOM, "cot", system="Du bist ...").system == "Du bist ..."


def test_identity_fallbacks():
    no_label = AnswerRecord(**{**ANES.__dict__, "meta": {"ideology": "6"}})
    assert identity(no_label).endswith("Politically, you place yourself on the right.")
    text_label = AnswerRecord(**{**ANES.__dict__, "meta": {"ideology": "Very liberal"}})
    assert identity(text_label).endswith("describe your political views as very liberal.")
    anon = AnswerRecord(**{**SV.__dict__, "meta": {}, "context": None})
    assert identity(anon) == "You are candidate 7, answering the smartvote questionnaire."
    with pytest.raises(ConfigError):
        identity(VK)


def test_prompts_do_not_leak_the_answer_format_into_extraction():
    """The instruction mentions letters and options; parsing the prompt itself finds no answer."""
    for rec, fn in ((VK, render_vk), (WOM, render_individual)):
        p = fn(rec, "cot")
        assert not extract_answer(p.text, rec.options).valid


@pytest.mark.parametrize("steering", ["qa", "bio", "portray", "unsteered"])
@pytest.mark.parametrize("attribute,group", [("POLPARTY", "Democrat"), ("CITIZEN", "Yes"), ("OVERALL", "Overall")])
def test_opinionqa_cot_steers_exactly_as_the_distribution_prompt(steering, attribute, group):
    # cot_opinionqa.j2 includes the distribution templates: everything up to the options is the same
    # text, and only the closing instruction differs.
    record = DistributionRecord(**{**OQA.__dict__, "attribute": attribute, "group": group})
    dist = render_distribution_prompt(record, steering).text
    cot = render_opinionqa(record, "cot", steering).text
    closing_dist = "Answer as a choice between A.,B.,C.\n\nAnswer:"
    closing_cot = 'Think step by step about how you would answer this question. Then give your final answer on the last line in the form "Answer: <letter>".'
    assert dist.endswith("\n" + closing_dist) and cot.endswith("\n\n" + closing_cot)
    assert cot.removesuffix("\n" + closing_cot) == dist.removesuffix(closing_dist)
    if attribute == "OVERALL" or steering == "unsteered":
        assert cot.startswith("Question: Would you favor or oppose X?")
    else:
        assert not cot.startswith("Question: Would you favor or oppose X?")


def test_steering_for_sends_the_overall_population_unsteered():
    from opinbench.prompts.steering import STEERING_FORMATS, steering_for

    overall = DistributionRecord(**{**OQA.__dict__, "attribute": "OVERALL", "group": "Overall"})
    for fmt in STEERING_FORMATS:
        assert steering_for(OQA, fmt) == fmt
        assert steering_for(overall, fmt) == "unsteered"
    with pytest.raises(ConfigError, match="steering must be one of"):
        steering_for(overall, "persona")  # an unknown format is an error even where it would not be used
