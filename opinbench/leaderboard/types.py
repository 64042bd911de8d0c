"""The shapes the leaderboard stores and passes around, typed: an entry (a row of the request
queue), a validation report and one metric's score in it.

`TypedDict` rather than dataclasses because they are stored as JSON (the report in the
``result`` column) and read back from the database as mappings; typing them names every key in
one place (and lets a type checker find a misspelt one) without changing what is stored. The
request as submitted is `opinbench.leaderboard.plan.Request` (a dataclass: it is built, not read).
"""

from __future__ import annotations

from typing import Any, TypedDict


class MetricScore(TypedDict, total=False):
    """One metric of a validated entry (`opinbench.leaderboard.validate`)."""

    display: str
    group: str
    direction: str
    raw: float
    stderr: float | None  # clustered on the sampling unit (docs/statistics.md)
    ci: list[float] | None
    per_question: dict[str, float] | None  # for the rank intervals (`opinbench.leaderboard.ranks`)
    floor: float
    ceiling: float
    normalised: float | None
    normalised_ci: list[float] | None
    missing: str  # why there is no score
    control: dict[str, Any]  # judge metrics: control-set accuracy per condition


class ValidationReport(TypedDict, total=False):
    """What `opinbench.leaderboard.validate.validate_run` returns and the store keeps as ``result``."""

    errors: list[str]
    warnings: list[str]
    scores: dict[str, MetricScore]
    headline: float | None
    headline_metrics: int
    tasks: dict[str, dict[str, Any]]  # version, task hash, documents, breakdown
    config: dict[str, Any]
    environment: dict[str, Any]
    subset: bool
    leaderboard: str
    leaderboard_version: int
    definition_digest: str
    command: str


class Entry(TypedDict, total=False):
    """A row of the request queue (`opinbench.leaderboard.tables.requests`) as the store returns it."""

    id: int
    leaderboard: str
    leaderboard_version: int
    identity_hash: str
    identity_key: str
    identity: dict[str, Any]
    model: str
    display_name: str | None
    revision: str | None
    weights_hash: str | None
    adapter: str | None
    adapter_hash: str | None
    dtype: str
    chat_template: bool
    submitter: str | None
    self_reported: bool
    rerun_of: int | None
    state: str  # PENDING, RUNNING, FINISHED, FAILED
    reason: str | None
    log_tail: str | None
    worker: str | None
    attempts: int
    lease_expires: float | None
    created: float
    started: float | None
    finished: float | None
    settings: dict[str, Any] | None
    result: ValidationReport | None
    definition_digest: str | None
    job: str  # evaluate or audit
    audit_seed: int | None
    audit: dict[str, Any] | None
    files: list[str]  # added by `leaderboard status ID`
