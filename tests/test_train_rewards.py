"""GRPO rewards, table-driven, and their agreement with the CoT tasks' scoring."""

from __future__ import annotations

import pytest

from opinbench.answers import extract_doc_answer as parse
from opinbench.train.rewards import (
    get_correctness_reward,
    get_format_reward,
    get_length_reward,
    get_rewards,
    truncate_at_stop,
)

OPTS = ["Yes", "Neutral", "No"]
STOP = ["</answer>"]


def call(fn, completions, gold="No", **kw):
    n = len(completions)
    return fn(completions, answer=[gold] * n, options=[OPTS] * n, letters=[list("ABC")] * n, **kw)


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<reasoning>Because.</reasoning><answer>No</answer>", 1.0),
        ("<reasoning>Because.</reasoning><answer>C</answer>", 1.0),  # the letter of "No"
        ("<reasoning>Because.</reasoning><answer>Yes</answer>", 0.0),
        ("<reasoning>Because.</reasoning><answer>No", 1.0),  # cut at the stop sequence: unclosed tag
        ("", 0.0),  # empty: never rewarded
        ("<reasoning>No idea.</reasoning><answer></answer>", 0.0),  # empty answer
        ("<reasoning>x</reasoning><answer>Yes or No</answer>", 0.0),  # ambiguous
        ("<reasoning>x</reasoning><answer>Maybe</answer>", 0.0),  # not an option
        ("I think No is right but who knows", 0.0),  # no answer marker: unparsable
        # lm-eval stops at the first </answer>: a second answer after it is never seen
        ("<answer>No</answer> on second thought <answer>Yes</answer>", 1.0),
        ([{"role": "assistant", "content": "<answer>No</answer>"}], 1.0),  # conversational completion
    ],
)
def test_correctness_reward(completion, expected):
    assert call(get_correctness_reward(STOP), [completion]) == [expected]


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<reasoning>x</reasoning><answer>No</answer>", 4.0),
        ("<reasoning>x</reasoning>\n<answer>Yes</answer>", 4.0),  # wrong but well formed
        ("<answer>No</answer>", 2.0),
        ("<reasoning>x<reasoning>y</reasoning><answer>No</answer>", 3.0),  # a tag twice earns nothing
        ("No", 0.0),  # parsable but untagged
        ("<reasoning>x</reasoning><answer></answer>", 0.0),  # tags but no answer: nothing
        ("<reasoning>x</reasoning><answer>No</answer><answer>", 4.0),  # after the stop: not seen
    ],
)
def test_format_reward(completion, expected):
    assert call(get_format_reward(stop=STOP), [completion]) == [expected]


def test_length_reward_units():
    text = "<reasoning>one two three</reasoning><answer>No</answer>"
    assert call(get_length_reward(10, "chars", STOP), [text]) == [-(len(text) - 10.0)]
    assert call(get_length_reward(2, "words", STOP), [text]) == [-1.0]  # 3 whitespace-separated words
    assert call(get_length_reward(5, "tokens"), [text], completion_ids=[[1] * 8]) == [-3.0]
    with pytest.raises(ValueError, match="completion_ids"):
        call(get_length_reward(5, "tokens"), [text])
    with pytest.raises(ValueError, match="unit"):
        get_length_reward(5, "lines")


def test_composite_is_the_weighted_sum_of_berdoz_et_al():
    funcs, weights = get_rewards("composite", stop=STOP, target_length=4, length_unit="tokens")
    assert [f.__name__ for f in funcs] == ["format_reward", "length_reward", "correctness_reward"]
    assert weights == [0.25, 0.01, 1.0]
    comps = ["<reasoning>x</reasoning><answer>No</answer>", "<answer>Yes</answer>", ""]
    ids = [[0] * 6, [0] * 4, []]
    per = [call(f, comps, completion_ids=ids) for f in funcs]
    total = [sum(w * p[i] for w, p in zip(weights, per)) for i in range(3)]
    assert total == pytest.approx([0.25 * 4 - 0.02 + 1.0, 0.25 * 2 + 0.0 + 0.0, 0.0 - 0.04 + 0.0])
    funcs, weights = get_rewards("binary")
    assert [f.__name__ for f in funcs] == ["correctness_reward"] and weights == [1.0]
    with pytest.raises(ValueError):
        get_rewards("other")


def test_rewards_check_their_columns():
    with pytest.raises(ValueError, match="'answer' and 'options'"):
        get_correctness_reward()(["x"])
    with pytest.raises(ValueError, match="1 completions but 2 answers"):
        get_correctness_reward()(["x"], answer=["No", "No"], options=[OPTS, OPTS])


def test_invalid_share_is_logged():
    seen = {}
    call(get_correctness_reward(STOP), ["<answer>No</answer>", "", "rambling"],
         log_metric=lambda name, value: seen.__setitem__(name, value))
    assert seen == {"invalid_share": pytest.approx(2 / 3)}


GENERATIONS = [
    "<reasoning>a</reasoning><answer>No</answer>",
    "<reasoning>a</reasoning><answer>Neutral</answer> trailing",
    "<reasoning>a</reasoning>\nAnswer: Yes",
    "Answer: B",
    "<answer>C) No</answer><answer>Yes</answer>",
    "<reasoning>I would not say Yes</reasoning><answer>not Yes</answer>",
    "B",
    "",
    "<answer>Yes, No</answer>",
]


@pytest.mark.parametrize("gold", OPTS)
def test_training_and_scoring_agree(gold):
    """correctness_reward == what the wom_cot task scores for the same raw generation."""
    doc = {"options": OPTS, "letters": list("ABC"), "answer": gold}
    reward = call(get_correctness_reward(STOP), GENERATIONS, gold=gold)
    for text, r in zip(GENERATIONS, reward):
        # lm-eval's generate_until returns the text before the first stop sequence
        seen_by_task = text.split("</answer>")[0] if "</answer>" in text else text
        assert r == float(parse(doc, seen_by_task).answer == gold), text


def test_truncate_at_stop():
    assert truncate_at_stop("a</answer>b</answer>", ["</answer>"]) == "a</answer>"
    assert truncate_at_stop("abc", ["</answer>", ""]) == "abc"
