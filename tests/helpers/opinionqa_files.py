"""Writers for small OpinionQA releases in the original layout, shared by tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

INFO_COLUMNS = ["", "Unnamed: 0", "key", "option_mapping", "question", "references", "option_ordinal"]


def write_wave(root: Path, name: str, questions: dict, attributes: dict[str, dict], metadata: dict | None = None) -> Path:
    """questions: {key: (text, references, ordinal)}; attributes: {ATTR: {key: {group: {option: count}}}}."""
    wave = root / name
    wave.mkdir(parents=True)
    with (wave / "info.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(INFO_COLUMNS)
        for i, (key, (text, refs, ordinal)) in enumerate(questions.items()):
            w.writerow([i, i, key, "{}", text, repr(refs), repr(ordinal)])
    metadata = metadata or {a: sorted({g for q in d.values() for g in q}) for a, d in attributes.items()}
    with (wave / "metadata.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "key", "options"])
        for i, (attr, groups) in enumerate(metadata.items()):
            w.writerow([i, attr, repr(list(groups))])
    for attr, per_q in attributes.items():
        payload = {}
        for key, groups in per_q.items():
            text, refs, _ = questions.get(key, ("?", [], []))
            payload[key] = {"MC_options": refs, "question_text": text, **groups}
        (wave / f"{attr}_data.json").write_text(json.dumps(payload))
    return wave


def tiny_questions(n: int) -> dict:
    """``n`` questions on a 3-point scale, every other one with the middle option listed last."""
    return {
        f"Q{i}_W1": (
            f"How safe is place {i}?",
            ["Very safe", "Somewhat safe", "Not safe", "Refused"],
            [1.0, 2.0, 3.0] if i % 2 else [1.0, 3.0, 2.0],
        )
        for i in range(n)
    }


def write_tiny_release(root: Path, n_questions: int, seed: int = 0) -> Path:
    """A human_resp release: ``n_questions`` x (SEX: Male, Female; POLPARTY: Democrat, Republican)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    questions = tiny_questions(n_questions)

    def counts():
        return {o: int(c) for o, c in zip(["Very safe", "Somewhat safe", "Not safe", "Refused"], rng.integers(1, 50, 4))}

    sex = {k: {"Male": counts(), "Female": counts()} for k in questions}
    party = {k: {"Democrat": counts(), "Republican": counts()} for k in questions}
    write_wave(root, "American_Trends_Panel_W1", questions, {"SEX": sex, "POLPARTY": party})
    return root
