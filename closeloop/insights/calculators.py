"""Calculators for planning and checking by hand: NPS from counts, a response rate,
and the answers needed to detect a change in NPS.

Sample size: one answer contributes +1 (promoter), 0 (passive) or −1 (detractor),
whose variance is v = pP + pD − (pP − pD)². Comparing two independent periods of n
answers each, the change has standard error sqrt(2v/n); detecting a true change Δ
with a two-sided test at level α and power 1 − β needs
    n = 2v (z(1 − α/2) + z(1 − β))² / Δ²   (Δ as a fraction, −2..2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from closeloop.core.errors import FieldError
from closeloop.core.nps import NpsSummary, share_interval

B2B_MEDIAN_RESPONSE_RATE = 12.4
POWERS = (0.5, 0.8, 0.9)


def count(field: str, value: str | None, *, low: int = 0, high: int = 10**9) -> int:
    """A whole number typed into a calculator."""
    text = (value or "").strip()
    if not text.isdigit():
        raise FieldError(field, f"{text!r} is not a whole number")
    number = int(text)
    if not low <= number <= high:
        raise FieldError(field, f"must be between {low:,} and {high:,}")
    return number


def number(field: str, value: str | None, low: float, high: float) -> float:
    """A decimal number typed into a calculator, within [low, high]."""
    text = (value or "").strip()
    try:
        result = float(text)
    except ValueError:
        raise FieldError(field, f"{text!r} is not a number") from None
    if not math.isfinite(result) or not low <= result <= high:
        raise FieldError(field, f"must be between {low:g} and {high:g}")
    return result


def nps_from_counts(promoters: int, passives: int, detractors: int) -> NpsSummary:
    if promoters + passives + detractors == 0:
        raise FieldError("promoters", "enter at least one answer")
    return NpsSummary(promoters, passives, detractors)


@dataclass(frozen=True)
class ResponseRate:
    delivered: int
    answered: int

    @property
    def rate(self) -> float:
        return 100.0 * self.answered / self.delivered

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson 95% interval of the rate, in percent."""
        return share_interval(self.answered, self.delivered)

    @property
    def below_median(self) -> bool:
        return self.rate < B2B_MEDIAN_RESPONSE_RATE


def response_rate(delivered: int, answered: int) -> ResponseRate:
    if delivered == 0:
        raise FieldError("delivered", "must be at least 1")
    if answered > delivered:
        raise FieldError("answered", "cannot exceed delivered")
    return ResponseRate(delivered, answered)


@dataclass(frozen=True)
class SampleSize:
    promoter_share: float  # percent
    detractor_share: float  # percent
    change: float  # NPS points
    power: float
    response_rate: float | None  # percent

    @property
    def variance(self) -> float:
        p, d = self.promoter_share / 100, self.detractor_share / 100
        return max(p + d - (p - d) ** 2, 0.0)

    @property
    def per_period(self) -> int:
        """Answers needed in each of the two periods."""
        z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(self.power)
        delta = self.change / 100
        return max(1, math.ceil(2 * self.variance * z * z / (delta * delta)))

    @property
    def invitations(self) -> int | None:
        """Invitations per period at the expected response rate."""
        if not self.response_rate:
            return None
        return math.ceil(self.per_period / (self.response_rate / 100))

    @property
    def baseline_nps(self) -> float:
        return self.promoter_share - self.detractor_share


def sample_size(
    promoter_share: float,
    detractor_share: float,
    change: float,
    power: float = 0.8,
    rate: float | None = None,
) -> SampleSize:
    if promoter_share + detractor_share > 100:
        raise FieldError("detractor_share", "promoters and detractors exceed 100%")
    if change <= 0:
        raise FieldError("change", "must be more than 0 points")
    if power not in POWERS:
        raise FieldError("power", "must be 0.5, 0.8 or 0.9")
    size = SampleSize(promoter_share, detractor_share, change, power, rate)
    if size.variance == 0:
        raise FieldError("promoter_share", "every answer in one class leaves nothing to test")
    return size
