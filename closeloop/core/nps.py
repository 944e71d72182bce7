"""NPS arithmetic: classes, detractor bands, the score, its uncertainty and change tests.

Every figure a page or the API shows about NPS comes from here, so the rules in
docs/domain.md §1 live in one place. Scores are integers 0..10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

# Two-sided 95% critical value of the normal distribution.
Z_95 = 1.96


class Category(StrEnum):
    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


class Band(StrEnum):
    """How badly a detractor rated us: the first axis of triage."""

    SEVERE = "severe"
    MODERATE = "moderate"
    MILD = "mild"


# Inclusive score ranges, used both in Python and to build SQL filters.
CATEGORY_RANGES: dict[Category, tuple[int, int]] = {
    Category.DETRACTOR: (0, 6),
    Category.PASSIVE: (7, 8),
    Category.PROMOTER: (9, 10),
}
BAND_RANGES: dict[Band, tuple[int, int]] = {
    Band.SEVERE: (0, 2),
    Band.MODERATE: (3, 4),
    Band.MILD: (5, 6),
}


def _check(score: int) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"score must be an integer from 0 to 10, not {score!r}")
    return score


def category(score: int) -> Category:
    """Promoter (9–10), passive (7–8) or detractor (0–6)."""
    _check(score)
    if score >= 9:
        return Category.PROMOTER
    if score >= 7:
        return Category.PASSIVE
    return Category.DETRACTOR


def band(score: int) -> Band | None:
    """The detractor band of a score (severe 0–2, moderate 3–4, mild 5–6); None for 7–10."""
    _check(score)
    for name, (low, high) in BAND_RANGES.items():
        if low <= score <= high:
            return name
    return None


def nps(promoters: int, passives: int, detractors: int) -> float:
    """%promoters − %detractors, from −100 to +100; 0 when there are no answers."""
    n = promoters + passives + detractors
    if n == 0:
        return 0.0
    return 100.0 * (promoters - detractors) / n


@dataclass(frozen=True)
class NpsSummary:
    """Counts per class for a set of answers, and everything derived from them."""

    promoters: int
    passives: int
    detractors: int

    @classmethod
    def from_scores(cls, scores: list[int]) -> NpsSummary:
        """Count a list of scores into classes."""
        cats = [category(s) for s in scores]
        return cls(
            promoters=cats.count(Category.PROMOTER),
            passives=cats.count(Category.PASSIVE),
            detractors=cats.count(Category.DETRACTOR),
        )

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float:
        return nps(self.promoters, self.passives, self.detractors)

    def percent(self, count: int) -> float:
        """A class count as a percentage of all answers (0 when there are none)."""
        return 100.0 * count / self.responses if self.responses else 0.0

    @property
    def standard_error(self) -> float:
        """Standard error of NPS in points: 100·sqrt((pP + pD − (pP − pD)²) / n)."""
        n = self.responses
        if n == 0:
            return 0.0
        p_p, p_d = self.promoters / n, self.detractors / n
        variance = max(p_p + p_d - (p_p - p_d) ** 2, 0.0)
        return 100.0 * math.sqrt(variance / n)

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% confidence interval of NPS, clipped to the scale's −100..100."""
        margin = Z_95 * self.standard_error
        return max(-100.0, self.nps - margin), min(100.0, self.nps + margin)


def share_interval(part: int, whole: int) -> tuple[float, float]:
    """The Wilson 95% interval of the share part/whole, in percent (whole > 0)."""
    n, p, z = whole, part / whole, Z_95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def change(before: NpsSummary, after: NpsSummary) -> float | None:
    """Points of NPS gained from `before` to `after`; None when either has no answers."""
    if not before.responses or not after.responses:
        return None
    return after.nps - before.nps


class Compared:
    """Mixed into a figure that holds a `current` and a `previous` summary."""

    current: NpsSummary
    previous: NpsSummary

    @property
    def change(self) -> float | None:
        """Points of NPS gained since the previous summary; None when either is empty."""
        return change(self.previous, self.current)

    @property
    def significant(self) -> bool:
        """True when the change passes the 95% test."""
        return change_is_significant(self.previous, self.current)


def change_z(before: NpsSummary, after: NpsSummary) -> float | None:
    """The z statistic of the change in NPS between two independent periods.

    None when it cannot be computed: a period with no answers, or both periods
    without any spread (every answer in one class), where the data give no
    estimate of their own uncertainty.
    """
    if before.responses == 0 or after.responses == 0:
        return None
    combined = math.sqrt(before.standard_error**2 + after.standard_error**2)
    if combined == 0.0:
        return None
    return (after.nps - before.nps) / combined


def change_is_significant(before: NpsSummary, after: NpsSummary) -> bool:
    """True when |ΔNPS| / sqrt(SE1² + SE2²) > 1.96: a trend arrow the data can carry."""
    z = change_z(before, after)
    return z is not None and abs(z) > Z_95


# Reference points shown beside an organisation's own figures (docs/domain.md §1).
B2B_SAAS_AVERAGE_NPS = 41.0
HEALTHY_DETRACTOR_SHARE = (10.0, 20.0)
# Above this share of detractors the problem is structural, not a follow-up problem.
STRUCTURAL_DETRACTOR_SHARE = 40.0
