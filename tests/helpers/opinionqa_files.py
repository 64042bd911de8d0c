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
