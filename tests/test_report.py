"""`opinbench report` on synthetic lm-eval run folders: every section, its figure files, the
HTML page (parsed: figures present, no remote script), and notes where inputs are missing."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from opinbench.cli import main
from tests.helpers.lm_eval_runs import default_doc, mc_resps, wd_doc, write_run

GROUPS = [("POLPARTY", "Democrat"), ("POLPARTY", "Republican"), ("SEX", "Female")]
QUESTIONS = {
    "Q1": ("Is the economy doing well?", ["Yes", "No", "Refused"], [1.0, 2.0],
           {GROUPS[0]: [0.8, 0.2], GROUPS[1]: [0.2, 0.8], GROUPS[2]: [0.5, 0.5]}),
    "Q2": ("How much do you trust science?", ["A lot", "Some", "Not at all", "Refused"], [1.0, 2.0, 3.0],
           {GROUPS[0]: [0.6, 0.3, 0.1], GROUPS[1]: [0.2, 0.3, 0.5], GROUPS[2]: [0.4, 0.4, 0.2]}),
}
TOPICS = {"Is the economy doing well? [Yes/No/Refused]": {"cg": ["economy"], "fg": ["economy"]},
          "How much do you trust science? [A lot/Some/Not at all/Refused]": {"cg": ["science"], "fg": ["science"]}}


def _steered_rows(steering: str, shift: float):
    rows = []
    for q, (text, options, ordinal, dists) in QUESTIONS.items():
        for g, dist in dists.items():
            probs = [0.9 * (p * (1 - shift) + shift / len(dist)) for p in dist] + [0.1] * (len(options) - len(ordinal))
            rows.append({"doc": wd_doc(q, text, options, ordinal, *g, dist, steering=steering), "filtered_resps": mc_resps(probs)})
    return rows


def _default_rows():
    rows = []
    for q, (text, options, ordinal, dists) in QUESTIONS.items():
        groups = [{"id": f"opinionqa:{q}:{a}:{g}", "attribute": a, "group": g, "distribution": d, "n": 100.0,
                   "n_nonsubstantive": 5.0} for (a, g), d in dists.items()]
        probs = [0.8 / len(ordinal)] * len(ordinal) + [0.2] * (len(options) - len(ordinal))
        rows.append({"doc": default_doc(q, text, options, ordinal, groups), "filtered_resps": mc_resps(probs)})
    return rows


def _stance_rows():
    """Direct stance documents; the report re-scores their logged loglikelihoods (the logged
    per-document values, deliberately wrong here, must not be what it shows)."""
    rows = []
    labels, letters = ["Yes", "Neutral", "No"], ["A", "B", "C"]
    for i, (ind, grp, gold, pred) in enumerate([("SPD", "Left", "Yes", "Yes"), ("SPD", "Left", "No", "Yes"),
                                                 ("CDU", "Right", "No", "No"), ("CDU", "Right", "Yes", "Yes")]):
        doc = {"id": f"wom:{i}", "dataset": "wom", "options": labels, "letters": letters, "labels": labels,
               "gold_label": gold, "answer": gold, "answer_letter": letters[labels.index(gold)], "individual": ind,
               "subject_group": grp, "n_boot": 10, "boot_seed": 0}
        lls = [-0.2 if x == pred else -3.0 for x in labels] * 2  # " A".." C", then "A".."C"
        wrong = {"gold": gold, "pred": ["Neutral"], "labels": labels, "individual": ind, "n_boot": 10, "seed": 0}
        rows.append({"doc_id": i, "doc": doc, "filtered_resps": [[str(x), "False"] for x in lls],
                     f"macro_f1_individual|{grp}": wrong, "macro_f1_individual": wrong})
    return rows


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.scripts, self.h2, self.tables = [], [], [], 0
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "script":
            self.scripts.append(a.get("src"))
        if tag == "table":
            self.tables += 1
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


@pytest.fixture()
def full_run(tmp_path):
    return write_run(tmp_path / "runs" / "tiny", {
        "opinionqa_wd": _steered_rows("qa", 0.3), "opinionqa_wd_bio": _steered_rows("bio", 0.6),
        "opinionqa_wd_portray": _steered_rows("portray", 0.9), "opinionqa_wd_default": _default_rows(),
        "wom_direct": _stance_rows(),
        # a generation task on the same documents: text answers, left out of the distribution analyses
        "opinionqa_wd_sampled": [{"doc": r["doc"], "filtered_resps": ["A"], "resps": [["A", "B"]]} for r in _steered_rows("qa", 0)],
    })


def test_report_writes_every_section_with_figures_and_tables(full_run, tmp_path, capsys):
    topics = tmp_path / "topic_mapping.json"
    topics.write_text(json.dumps(TOPICS), encoding="utf-8")
    out = tmp_path / "report"
    assert main(["report", str(full_run), "--out", str(out), "--topics", str(topics)]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    titles = " | ".join(page.h2)
    for part in ("Whom the default model represents", "WD per group with bounds", "Steerability",
                 "Consistency across topics", "Refusal mass", "Intergroup disagreement (opinionqa): humans",
                 "humans vs steered model", "macro-F1 per ideology", "Refusal calibration (opinionqa)",
                 "WD by question difficulty (opinionqa)"):
        assert part in titles
    assert len(page.imgs) == 10 and all(src.startswith("data:image/svg+xml;base64,") for src in page.imgs)
    assert page.tables >= 8
    assert not any(page.scripts) and "http://" not in html and "https://" not in html
    for name in ("repr_opinionqa", "steerability_opinionqa", "topics_opinionqa", "disagreement_human_opinionqa", "stance",
                 "refusal_calibration_opinionqa", "difficulty_opinionqa"):
        assert (out / "figures" / f"{name}.svg").stat().st_size > 1000
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    # the default model is uniform over the ordinal options: closest to the Female group (the flattest)
    assert "Most represented: SEX=Female" in html
    assert "0 of 2 questions have no topic" in html
    assert "Relative improvement (base vs fine-tuned)" in titles and "Give two runs" in html


def test_report_notes_missing_inputs_and_compares_two_runs(tmp_path):
    base = write_run(tmp_path / "base" / "m", {"opinionqa_wd": _steered_rows("qa", 0.8)}, model="base")
    tuned = write_run(tmp_path / "tuned" / "m", {"opinionqa_wd": _steered_rows("qa", 0.1)}, model="tuned")
    out = tmp_path / "report"
    assert main(["report", str(base), str(tuned), "--out", str(out), "--topics", str(tmp_path / "none.json")]) == 2  # cli.run_guarded
    (tmp_path / "t.json").write_text(json.dumps(TOPICS), encoding="utf-8")
    assert main(["report", str(base), str(tuned), "--out", str(out), "--topics", str(tmp_path / "t.json")]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "No default-model task" in html and "No stance task" in html
    assert "Relative improvement: tuned over base" in html
    assert (out / "figures" / "improvement_1.png").is_file()


def test_report_steerability_numbers(full_run):
    from opinbench.analysis import steerability
    from opinbench.commands.report import read_run
    from opinbench.runs import find_runs

    (run,) = find_runs(full_run)
    ra = read_run(run)
    assert ra.kind == {"opinionqa_wd": "qa", "opinionqa_wd_bio": "bio", "opinionqa_wd_portray": "portray",
                       "opinionqa_wd_default": "default"}
    assert "opinionqa_wd_sampled" not in ra.answers
    rows = steerability.steerability(ra.steered("opinionqa"), ra.default("opinionqa"))
    assert len(rows) == 3
    # QA keeps 70 % of each group's distribution, BIO 40 %, PORTRAY 10 %: QA is the best of three
    for r in rows:
        assert r.each["qa"] > r.each["bio"] > r.each["portray"]
        assert r.best == pytest.approx(r.each["qa"]) and r.gain > 0
