"""Judge calibration: the faithfulness judge on reasoning whose answer is known.

A faithfulness score says as much about the judge as about the model: a weak
judge cannot read the reasoning, a biased one answers from its own view of the
situation, or retreats to "Either". So every faithfulness run also judges a
control set built from Value Kaleidoscope's human-checked explanations
(the Overton release, joined to the steerable release's gold labels by
``opinbench.data.vk.load_vk``):

* ``explanation``: the explanation alone. Expected: the gold label. Can the
  judge infer the conclusion from content?
* ``gold_framed``: the explanation plus a closing sentence stating the gold
  label. Expected: the gold label. A sanity check: below ~100 % the judge
  cannot even read an explicit conclusion.
* ``wrong_framed``: the explanation plus a closing sentence stating a wrong
  label. Expected: that stated label, since a faithfulness judge must report
  what the reasoning concludes, not what it thinks is right. A judge that
  answers from its own view of the situation (or from the explanation while
  ignoring the stated conclusion) scores low here; ``gold_share`` says how often
  it went back to the gold label, ``either_share`` how often it took refuge in
  "Either".

Records are drawn stratified by gold label (equal numbers per label where the
data allows) with a seed, so that "Either" shares are comparable across runs.
The value/right/duty (the record's subject) is not shown, exactly as for the
real samples.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opinbench.errors import ConfigError, OpinbenchError

log = logging.getLogger(__name__)

CONDITIONS = ("explanation", "gold_framed", "wrong_framed")


@dataclass(frozen=True)
class ControlItem:
    """One control prompt: a situation, reasoning, and the answer a good judge gives.

    Attributes:
        record_id: the VK record (``vk:<id>``).
        condition: one of `CONDITIONS`.
        question: the situation.
        options: option texts (``Supports``, ``Opposes``, ``Either``).
        reasoning: the explanation, framed per the condition.
        expected: the answer a faithful reader gives.
        gold: the record's gold label.
        framed: the label stated by the framing sentence (None for ``explanation``).
    """

    record_id: str
    condition: str
    question: str
    options: tuple[str, ...]
    reasoning: str
    expected: str
    gold: str
    framed: str | None


def default_control_source() -> Path:
    """The VK data folder from the data registry (``$OPINBENCH_DATA_DIR``, ...)."""
    try:
        from opinbench.data.registry import default_source

        return default_source("vk")
    except OpinbenchError as err:
        raise ConfigError(
            f"{err}; pass --control-data DIR, or skip calibration with --no-control"
        ) from err
    except Exception as err:  # noqa: BLE001 (e.g. no data directory configured)
        raise ConfigError(
            f"cannot locate the Value Kaleidoscope data for the judge control set ({err}); "
            "pass --control-data DIR, set $OPINBENCH_DATA_DIR, "
            "or skip calibration with --no-control"
        ) from err


def _draw(records: list[Any], options: tuple[str, ...], n: int, seed: int) -> list[Any]:
    """``n`` records, round-robin over the gold labels: equal shares where possible, the rest
    from the larger ones; in id order."""
    by_label: dict[str, list[Any]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r.id):
        if r.answer in options:
            by_label[r.answer].append(r)
    rng = random.Random(seed)
    for label in by_label:
        rng.shuffle(by_label[label])
    chosen: list[Any] = []
    queues = [by_label[o] for o in options if by_label[o]]
    i = 0
    while len(chosen) < n and any(queues):
        q = queues[i % len(queues)]
        if q:
            chosen.append(q.pop())
        i += 1
    return sorted(chosen, key=lambda r: r.id)


def _items(r: Any, options: tuple[str, ...], conditions: tuple[str, ...],
           framing: dict[str, str], seed: int) -> list[ControlItem]:
    """One record's control items, one per condition."""
    expl = str(r.meta["explanation"]).strip()
    wrong = random.Random(f"{seed}:{r.id}").choice([o for o in options if o != r.answer])
    items = []
    for cond in conditions:
        if cond == "explanation":
            items.append(
                ControlItem(r.id, cond, r.question, options, expl, r.answer, r.answer, None)
            )
        else:
            label = r.answer if cond == "gold_framed" else wrong
            text = f"{expl} {framing[label]}"
            items.append(ControlItem(r.id, cond, r.question, options, text, label, r.answer, label))
    return items


def load_control(
    source: str | Path | None,
    control: dict[str, Any],
    *,
    limit: int | None = None,
    seed: int = 0,
) -> list[ControlItem]:
    """The control items for ``control`` settings (the ``control:`` block of the VK judge YAML).

    Args:
        source: VK data (folder or steerable file); None = the registry default.
        control: ``options``, ``conditions``, ``framing`` and ``limit``.
        limit: records to draw (overrides ``control["limit"]``).
        seed: the draw and the choice of wrong labels.

    Raises:
        ConfigError: no data, or no record carries an explanation.
    """
    from opinbench.data.vk import load_vk

    path = Path(source) if source else default_control_source()
    records = [r for r in load_vk(path) if (r.meta or {}).get("explanation")]
    if not records:
        raise ConfigError(
            f"{path}: no Value Kaleidoscope record with an explanation (the Overton file beside it)"
        )
    options = tuple(control.get("options") or records[0].options)
    conditions = tuple(control.get("conditions") or CONDITIONS)
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        raise ConfigError(
            f"unknown control conditions {sorted(unknown)}; known: {', '.join(CONDITIONS)}"
        )
    framing: dict[str, str] = control.get("framing") or {}
    if any(c.endswith("_framed") for c in conditions) and set(options) - set(framing):
        raise ConfigError(
            f"control framing sentences missing for {sorted(set(options) - set(framing))}"
        )
    n = int(limit if limit is not None else control.get("limit", 60))

    chosen = _draw(records, options, n, seed)
    items = [item for r in chosen for item in _items(r, options, conditions, framing, seed)]
    log.info(
        "judge control set: %d records x %d conditions from %s", len(chosen), len(conditions), path
    )
    if len(chosen) < n:
        log.warning(
            "judge control set: only %d records with explanations (asked for %d)", len(chosen), n
        )
    return items
