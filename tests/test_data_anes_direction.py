"""ANES: each mapped item's direction, checked against the data itself.

The mappings (``resources/anes_mapping_pilot_*.yaml``) have no field naming the
side that takes "Yes"; it follows from the recoding and the question: "Yes" is
agreeing with the policy the question names (favoring it, "should ... be done").
Rule used here: the side expected to say Yes more often is the one that policy
belongs to in US politics of the study year; the respondents' own ideology
(``ideo5`` -> Left / Right) must show it. An item whose expected side is
ambiguous is listed with ``None`` and not checked. A mapping whose codes were
read the wrong way round (Yes and No swapped) fails here.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from opinbench.data.anes import load_anes

EXPECTED_YES_SIDE: dict[tuple[str, str], str | None] = {
    ("pilot_2022", "roe"): "Right",  # favor overturning Roe
    ("pilot_2022", "abpros1"): "Right",  # favor prosecuting doctors
    ("pilot_2022", "abpros2"): "Right",  # favor prosecuting women
    ("pilot_2022", "abort_4pta"): "Left",  # abortion always a personal choice
    ("pilot_2022", "abort_4ptb"): "Left",
    ("pilot_2022", "transbath1"): "Left",  # allow restrooms matching gender identity
    ("pilot_2022", "transbath2"): "Left",
    ("pilot_2022", "transsport1"): "Left",  # allow transgender girls on girls' teams
    ("pilot_2022", "transsport2"): "Right",  # require teams matching sex at birth
    ("pilot_2022", "ukraine"): "Left",  # do more to help Ukraine (2022: Democrats more)
    ("pilot_2024", "abrtpre_abrtself"): "Left",
    ("pilot_2024", "abrtpre_standard"): "Left",
    ("pilot_2024", "aid_israel"): "Right",
    ("pilot_2024", "aid_palest"): "Left",
    ("pilot_2024", "aid_ukraine"): "Left",
    ("pilot_2024", "border_legal"): "Left",  # easier legal immigration
    ("pilot_2024", "border_milit"): "Right",
    ("pilot_2024", "border_patrol"): "Right",
    ("pilot_2024", "crime_selfplc"): "Right",  # focus on punishment
    ("pilot_2024", "felonserve_fedoff"): None,  # no clear partisan side (2024: a convicted nominee)
    ("pilot_2024", "police_number"): "Right",
    ("pilot_2024", "trans_health"): "Left",
    ("pilot_2024", "trans_sportboy"): "Right",
    ("pilot_2024", "trans_sportgirl"): "Right",
    ("pilot_2024", "treatcrime_abort"): "Right",
    ("pilot_2024", "treatcrime_marij"): "Right",
}


@pytest.fixture(scope="module")
def yes_shares(shared_data: Path) -> dict[tuple[str, str], dict[str, tuple[int, int]]]:
    anes = shared_data / "anes"
    if not anes.is_dir():
        pytest.skip(f"no ANES data at {anes}")
    out: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: {"Left": [0, 0], "Right": [0, 0]})
    for r in load_anes(anes, scheme="aggressive"):
        if r.subject_group in ("Left", "Right") and r.answer in ("Yes", "No"):
            cell = out[(r.meta["release"], r.question_key)][r.subject_group]
            cell[0] += r.answer == "Yes"
            cell[1] += 1
    return {k: {g: (y, n) for g, (y, n) in v.items()} for k, v in out.items()}


def test_every_item_has_an_expected_side(yes_shares):
    assert set(yes_shares) == set(EXPECTED_YES_SIDE)


@pytest.mark.parametrize("item", sorted(k for k, v in EXPECTED_YES_SIDE.items() if v is not None), ids="/".join)
def test_mapped_yes_is_chosen_more_by_the_expected_side(yes_shares, item):
    expected = EXPECTED_YES_SIDE[item]
    other = "Left" if expected == "Right" else "Right"
    share = {g: y / n for g, (y, n) in yes_shares[item].items() if n}
    assert share[expected] > share[other], (
        f"{item}: Yes chosen by {share[expected]:.0%} of {expected} and {share[other]:.0%} of {other}: "
        "the mapping's Yes/No codes look swapped"
    )
