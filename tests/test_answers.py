"""Answer extraction on adversarial model outputs (table-driven).

Each row: (case name, model output, options, expected answer or None, expected
``how`` prefix). The same parse scores the CoT tasks, feeds the judges and the
GRPO rewards, so every row here is a promise to all three.
"""

from __future__ import annotations

import doctest

import pytest

import opinbench.answers as answers_module
from opinbench.answers import LETTERS, Extraction, extract_answer

VK = ["Supports", "Opposes", "Either"]
STANCE = ["Yes", "Neutral", "No"]
YES_NO = ["Yes", "No"]
OQA = ["A great deal", "A fair amount", "Not too much", "Not at all", "Refused"]

CASES = [
    # --- tags
    ("tag letter", "<reasoning>r</reasoning><answer>B</answer>", VK, "Opposes", "tag"),
    ("tag text", "<reasoning>r</reasoning>\n<answer>Neutral</answer>", STANCE, "Neutral", "tag"),
    ("tag uppercase and spaces", "<ANSWER>  yes  </ANSWER>", STANCE, "Yes", "tag"),
    ("tag lettered text", "<answer>C. No</answer>", STANCE, "No", "tag"),
    ("tag repeated marker", "<answer>Answer: No</answer>", STANCE, "No", "tag"),
    ("several tags: last wins", "<answer>Yes</answer> wait, <answer>No</answer>", STANCE, "No", "tag"),
    ("unclosed final tag (stop sequence)", "<reasoning>r</reasoning><answer>No", STANCE, "No", "tag"),
    ("tag mentioned in reasoning", "I will put it in <answer> tags.\n<answer>Yes</answer>", STANCE, "Yes", "tag"),
    ("tags beat answer line", "Answer: Yes\n<answer>No</answer>", STANCE, "No", "tag"),
    ("empty tag", "<reasoning>r</reasoning><answer></answer>", STANCE, None, "invalid: empty answer"),
    ("tag with two options", "<answer>Yes or No</answer>", STANCE, None, "invalid: more than one option"),
    ("tag with slash", "<answer>Yes/No</answer>", STANCE, None, "invalid: more than one option"),
    ("tag not an option", "<answer>Agree</answer>", STANCE, None, "invalid: not an option"),
    ("tag truncated", "<answer>Ye", STANCE, None, "invalid"),
    ("tag negated", "<answer>not Yes</answer>", STANCE, None, "invalid: negated"),
    ("negation after the option", "<answer>No, not at all</answer>", STANCE, "No", "tag"),
    ("leading option, comma, explanation", "Answer: No, The thesis is not a neutral one", STANCE, "No", "answer_line"),
    ("leading option, dash, explanation", "Answer: Yes - it protects workers", STANCE, "Yes", "answer_line"),
    ("leading option in tags, explanation", "<answer>Neutral; neither yes nor no</answer>", STANCE, "Neutral", "tag"),
    ("leading option, then an alternative", "Answer: Yes, or No", STANCE, None, "invalid: more than one option"),
    ("leading option, list of two", "Answer: Yes, No", STANCE, None, "invalid: more than one option"),
    ("leading option, then another one", "Answer: Yes, but really No", STANCE, None, "invalid: more than one option"),
    ("negation inside an option", "Answer: Not too much", OQA, "Not too much", "answer_line"),
    # --- answer lines
    ("answer line letter", "Reasoning.\nAnswer: B", VK, "Opposes", "answer_line"),
    ("answer line lowercase", "reasoning\nanswer: (b)", VK, "Opposes", "answer_line"),
    ("answer line bold", "r\n**Answer:** C", VK, "Either", "answer_line"),
    ("final answer", "r\nFinal answer: A. Supports", VK, "Supports", "answer_line"),
    ("answer line option text", "r\nAnswer: Opposes", VK, "Opposes", "answer_line"),
    ("answer line singular text", "r\nAnswer: Oppose", VK, "Opposes", "answer_line"),
    ("answer line letter with reason", "r\nAnswer: B. Opposes, because it is harmful", VK, "Opposes", "answer_line"),
    ("answer line letter then because", "r\nAnswer: B because it harms", VK, "Opposes", "answer_line"),
    ("answer line short phrase", "r\nAnswer: I choose Either", VK, "Either", "answer_line"),
    ("answer on the next line", "r\nAnswer:\n\nB", VK, "Opposes", "answer_line"),
    ("several answer lines: last wins", "Answer: A\nHmm, no.\nAnswer: C", VK, "Either", "answer_line"),
    ("answer in reasoning, final line decides", "A seems right, but A ignores duty.\nAnswer: B", VK, "Opposes", "answer_line"),
    ("letter and text disagree", "r\nAnswer: A. Opposes", VK, None, "invalid: letter and option text disagree"),
    ("two letters", "r\nAnswer: A or B", VK, None, "invalid: more than one option"),
    ("two letters slash", "r\nAnswer: A/B", VK, None, "invalid: more than one option"),
    ("letter out of range", "r\nAnswer: D", VK, None, "invalid: letter D is not an option"),
    ("pronoun I is not a letter", "r\nAnswer: I think it is Supports", VK, "Supports", "answer_line"),
    ("pronoun I without option", "r\nAnswer: I am not sure", VK, None, "invalid"),
    ("answer line empty", "r\nAnswer:", VK, None, "invalid: empty answer"),
    # --- "The answer is X": only when there is no "Answer:" line
    ("the answer is", "r\n\nThe answer is: C. Either\n\nThe answer is: C. Either", VK, "Either", "answer_line"),
    ("so the final answer is", "r\nSo the final answer is B.", VK, "Opposes", "answer_line"),
    ("answer line beats answer-is commentary", 'r\nAnswer: C. Either\n\nThe answer is "Either" because it is long and winding and so on',
     VK, "Either", "answer_line"),
    ("answer-is with two options", "The answer is either A. Supports or C. Either.", VK, None, "invalid: more than one option"),
    ("answer-is inside a sentence does not count", "I think the answer is B.", VK, None, "invalid: no answer found"),
    ("answer line long sentence", "r\nAnswer: this is a long story about many things and in the end Yes", STANCE, None, "invalid: not an option"),
    ("option starting like a letter", "r\nAnswer: A fair amount, I would say", OQA, "A fair amount", "answer_line"),
    ("option starting like a letter, exact", "Answer: A great deal", OQA, "A great deal", "answer_line"),
    ("multi-word option, lettered", "Answer: C. Not too much", OQA, "Not too much", "answer_line"),
    ("longest option wins", "Answer: Not at all", OQA, "Not at all", "answer_line"),
    # --- bare letters
    ("bare letter", "B", VK, "Opposes", "bare_letter"),
    ("bare letter lowercase bracket", " (c) ", VK, "Either", "bare_letter"),
    ("bare letter dot", "A.", VK, "Supports", "bare_letter"),
    ("bare letter out of range", "E", VK, None, "invalid: letter E is not an option"),
    # --- option text without a marker
    ("whole output option", "Opposes.", VK, "Opposes", "option_text"),
    ("whole output lettered option", "B) Opposes", VK, "Opposes", "option_text"),
    ("last line option", "It depends on context.\nEither", VK, "Either", "option_text"),
    ("last line bare letter", "It depends on context.\n(C)", VK, "Either", "option_text"),
    ("after reasoning tag, missing answer tags", "<reasoning>It is good.</reasoning> Yes", STANCE, "Yes", "option_text"),
    ("option lowercase with spaces", "   neutral  ", STANCE, "Neutral", "option_text"),
    # --- invalid
    ("empty output", "", VK, None, "invalid: empty output"),
    ("white space only", "  \n ", VK, None, "invalid: empty output"),
    ("none", None, VK, None, "invalid: empty output"),
    ("letters only in reasoning", "I think A is tempting but B is also fine.", VK, None, "invalid: no answer found"),
    ("option only inside reasoning", "Yes, this supports it, I think.\nHard to say.", STANCE, None, "invalid: no answer found"),
    ("missing tags, prose answer", "<reasoning>r</reasoning> I would say yes overall", STANCE, None, "invalid: no answer found"),
]


@pytest.mark.parametrize(("text", "options", "answer", "how"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_extract_answer(text, options, answer, how):
    ext = extract_answer(text, options)
    assert ext.answer == answer, ext
    assert ext.how.startswith(how), ext
    assert ext.valid is (answer is not None)
    if answer is not None:
        assert ext.letter == LETTERS[options.index(answer)]
    else:
        assert ext.letter is None


def test_custom_letters():
    ext = extract_answer("Answer: 2", ["Yes", "No"], letters="12")
    assert (ext.answer, ext.letter) == ("No", "2") or not ext.valid  # digits are not letters
    assert extract_answer("Answer: No", ["Yes", "No"], letters="XY").letter == "Y"


def test_extraction_is_frozen_record():
    ext = Extraction("Yes", "A", "tag")
    with pytest.raises(AttributeError):
        ext.answer = "No"  # type: ignore[misc]


def test_doctests():
    assert doctest.testmod(answers_module).failed == 0


@pytest.mark.parametrize(
    ("text", "reasoning"),
    [
        ("<reasoning>x</reasoning><answer>No", "<reasoning>x</reasoning>"),
        ("It helps.\nAnswer: A", "It helps.\n"),
        ("Answer: A", ""),
        ("It helps.\nThe answer is: A", "It helps.\n"),
        ("B", None),
        ("", None),
    ],
)
def test_answer_start(text, reasoning):
    from opinbench.answers import answer_start

    start = answer_start(text)
    assert (None if start is None else text[:start]) == reasoning


def test_judges_cut_at_the_same_tag():
    """opinbench.judging.samples cuts the reasoning at answers._TAG: keep it matching unclosed tags."""
    from opinbench.answers import _ANSWER_LINE, _TAG

    assert _TAG.findall("<reasoning>x</reasoning><answer>No") == ["No"]
    assert [m.group("x") for m in _ANSWER_LINE.finditer("a\nAnswer: B")] == ["B"]
