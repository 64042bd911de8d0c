"""Subpopulations: the attributes and groups the steering tasks condition on."""

from __future__ import annotations

from dataclasses import dataclass

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


KEYWORDS = ("standard", "all", "overall", "every")


@dataclass(frozen=True)
class Selection:
    """Which (attribute, group) pairs a task or export wants."""

    keywords: frozenset[str]
    pairs: frozenset[tuple[str, str]]

    def __contains__(self, item: tuple[str, str]) -> bool:
        attribute, group = item
        overall = attribute == OVERALL_ATTRIBUTE
        k = self.keywords
        if "every" in k or (overall and "overall" in k) or (not overall and "all" in k):
            return True
        if "standard" in k and is_standard(attribute, group):
            return True
        return (attribute, group) in self.pairs or (attribute, "*") in self.pairs


def select_groups(spec: str | list[str] | tuple[str, ...] | Selection) -> Selection:
    """Parse a group selection: comma-separated keywords and ``ATTR:Group`` items.

    Keywords: ``standard`` (the 22 of the paper), ``all`` (every group in the
    source), ``overall`` (the whole population), ``every`` (all groups and the
    overall population). ``ATTR`` alone means every group of that attribute.

    >>> ("POLPARTY", "Democrat") in select_groups("standard")
    True
    >>> ("OVERALL", "Overall") in select_groups("standard,overall")
    True
    >>> ("AGE", "65+") in select_groups(["AGE"])
    True
    """
    if isinstance(spec, Selection):
        return spec
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    keywords, pairs = set(), set()
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item in KEYWORDS:
            keywords.add(item)
        else:
            attr, _, group = item.partition(":")
            pairs.add((attr.strip(), group.strip() or "*"))
    return Selection(frozenset(keywords), frozenset(pairs))


def wanted(selection: Selection, attribute: str, group: str) -> bool:
    return (attribute, group) in selection
