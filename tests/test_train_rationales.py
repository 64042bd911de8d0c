"""CoT targets and STaR rationales, with a fake provider behind the LLM runner and cache."""

from __future__ import annotations

import pytest

from opinbench.llm.cache import ReplyCache
from opinbench.train import rationales as R


def doc(i: int, answer: str = "No", dataset: str = "wom") -> dict:
    options = ["Yes", "Neutral", "No"] if dataset == "wom" else ["Supports", "Opposes", "Either"]
    letters = ["A", "B", "C"]
    return {"id": f"d{i}", "dataset": dataset, "prompt": f"Thesis {i}?", "system": "You are a German voter.",
            "options": options, "letters": letters, "answer": answer, "answer_letter": letters[options.index(answer)]}


class FakeProvider:
    """Replies by document number: 0 right at once, 1 right only with the hint, 2 never, 3 errors."""

    max_concurrency = 1

    def __init__(self):
        self.requests = []

    def chat(self, request):
        self.requests.append(request)
        text = request.messages[0][1]
        n = int(text.split()[1].rstrip("?"))
        hinted = "Hint: the answer is" in text
        if n == 3:
            from opinbench.llm.errors import RequestError

            raise RequestError("boom", kind="http 400", retryable=False)
        if n == 0 or (n == 1 and hinted):
            return "<reasoning>Taxes fund schools.</reasoning><answer>No</answer>"
        return "<reasoning>Hmm.</reasoning><answer>Yes</answer>"


def test_star_keeps_correct_and_rationalised(tmp_path):
    docs = [doc(i) for i in range(4)]
    provider = FakeProvider()
    with ReplyCache(tmp_path / "c.sqlite") as cache:
        kept, stats = R.synthetic_rationales(docs, provider=provider, identity={"provider": "fake", "model": "m"},
                                             cache=cache, progress=False)
        assert [(d["id"], r) for d, r in kept] == [("d0", "Taxes fund schools."), ("d1", "Taxes fund schools.")]
        assert stats.as_dict() == {"documents": 4, "correct_first": 1, "rationalized": 1, "wrong": 1, "failed": 1,
                                   "empty_rationale": 0}
        # the hint is only in the rationalisation requests, never in what is kept for training
        hinted = [r for r in provider.requests if "Hint:" in r.messages[0][1]]
        assert len(hinted) == 2 and all(r.system == "You are a German voter." for r in provider.requests)
        # a rerun is answered from the cache: only the failed request is sent again
        n = len(provider.requests)
        R.synthetic_rationales(docs, provider=provider, identity={"provider": "fake", "model": "m"}, cache=cache,
                               progress=False)
        assert len(provider.requests) - n == 1


def test_star_without_rationalisation_drops_wrong(tmp_path):
    with ReplyCache(tmp_path / "c.sqlite") as cache:
        kept, stats = R.synthetic_rationales([doc(0), doc(1)], provider=FakeProvider(),
                                             identity={"provider": "fake", "model": "m"}, cache=cache,
                                             rationalize=False, progress=False)
    assert [d["id"] for d, _ in kept] == ["d0"] and stats.wrong == 1 and stats.rationalized == 0


@pytest.mark.parametrize(
    "dataset, answer, rationale, expected",
    [
        ("wom", "No", "Too costly.", "<reasoning>Too costly.</reasoning>\n<answer>No</answer>"),
        ("vk", "Opposes", "It harms others.", "It harms others.\nAnswer: B"),
    ],
)
def test_format_target_parses_back_to_gold(dataset, answer, rationale, expected):
    d = doc(0, answer, dataset)
    target = R.format_target(d, rationale)
    assert target == expected and R.target_is_gold(d, target)


def test_a_rationale_with_its_own_answer_is_not_gold():
    d = doc(0, "No", "wom")
    assert not R.target_is_gold(d, "<reasoning>x</reasoning><answer>No</answer>\n<answer>Yes</answer>")


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("<reasoning> Because. </reasoning><answer>No</answer>", "Because."),
        ("Step one.\nStep two.\nAnswer: B", "Step one.\nStep two."),
        ("<reasoning>unclosed <answer>No</answer>", "unclosed"),
        ("Answer: B", ""),
    ],
)
def test_extract_rationale(reply, expected):
    assert R.extract_rationale(reply) == expected


def test_shorten_keeps_whole_sentences():
    assert R.shorten("One. Two two. Three.", 14) == "One. Two two."
    assert R.shorten("short", None) == "short"
    assert R.shorten("Unbreakable", 4) == "Unbr"
