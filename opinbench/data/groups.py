"""Subpopulations: the attributes and groups the steering tasks condition on."""

from __future__ import annotations

OVERALL_ATTRIBUTE = "OVERALL"
OVERALL_GROUP = "Overall"

# The 22 subpopulations of Santurkar et al. (2023, "Whose opinions do language
# models reflect?", steerability experiments), also SubPOP's `demographics_22.csv`.
STANDARD_GROUPS: dict[str, tuple[str, ...]] = {
    "CREGION": ("Northeast", "South"),
    "EDUCATION": ("College graduate/some postgrad", "Less than high school"),
    "SEX": ("Male", "Female"),
    "POLIDEOLOGY": ("Liberal", "Conservative", "Moderate"),
    "INCOME": ("$100,000 or more", "Less than $30,000"),
    "POLPARTY": ("Democrat", "Republican"),
    "RACE": ("Black", "White", "Asian", "Hispanic"),
    "RELIG": ("Protestant", "Jewish", "Hindu", "Atheist", "Muslim"),
}

# Respondents who did not report the attribute are not a subpopulation.
NON_GROUPS = frozenset({"Refused", "nan", "", "Don't know", "DK/Refused"})


def is_standard(attribute: str, group: str) -> bool:
    return group in STANDARD_GROUPS.get(attribute, ())


def select_groups(spec: str | list[str] | tuple[str, ...]) -> set[tuple[str, str]] | str:
    """Parse a group selection.

    ``"standard"`` (the 22), ``"all"`` (every group in the source), ``"overall"``
    (the whole population), or a list of ``"ATTR:Group"`` / ``"ATTR"`` strings.
    Returns the keyword unchanged, or the set of (attribute, group) pairs, where a
    bare attribute becomes (attribute, "*").
    """
    if isinstance(spec, str):
        if spec in ("standard", "all", "overall"):
            return spec
        spec = [s for s in spec.split(",") if s.strip()]
    pairs: set[tuple[str, str]] = set()
    for item in spec:
        attr, _, group = item.partition(":")
        pairs.add((attr.strip(), group.strip() or "*"))
    return pairs


def wanted(selection: set[tuple[str, str]] | str, attribute: str, group: str) -> bool:
    if selection == "all":
        return attribute != OVERALL_ATTRIBUTE
    if selection == "standard":
        return is_standard(attribute, group)
    if selection == "overall":
        return attribute == OVERALL_ATTRIBUTE
    assert isinstance(selection, set)
    return (attribute, group) in selection or (attribute, "*") in selection
