"""NPS arithmetic checked against a brute-force computation over individual answers."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeloop.core import nps

scores = st.lists(st.integers(min_value=0, max_value=10), min_size=1, max_size=400)


def brute_values(answers: list[int]) -> list[int]:
    """Each answer as +1 (promoter), 0 (passive), −1 (detractor): NPS is 100 × their mean."""
    return [1 if s >= 9 else 0 if s >= 7 else -1 for s in answers]


def test_it_classifies_every_score() -> None:
    assert [nps.category(s) for s in range(11)] == ["detractor"] * 7 + ["passive"] * 2 + [
        "promoter"
    ] * 2
    assert [nps.band(s) for s in range(11)] == ["severe"] * 3 + ["moderate"] * 2 + ["mild"] * 2 + [
        None
    ] * 4


@pytest.mark.parametrize("bad", [-1, 11, 3.5, "7", True, None])
def test_it_refuses_scores_outside_the_scale(bad: object) -> None:
    with pytest.raises(ValueError, match="score must be an integer from 0 to 10"):
        nps.category(bad)  # type: ignore[arg-type]


@given(scores)
def test_it_computes_nps_as_the_mean_of_per_answer_values(answers: list[int]) -> None:
    summary = nps.NpsSummary.from_scores(answers)
    assert summary.responses == len(answers)
    assert summary.nps == pytest.approx(100 * statistics.fmean(brute_values(answers)))
    assert -100 <= summary.nps <= 100


@given(scores)
def test_it_computes_the_standard_error_from_the_population_variance(answers: list[int]) -> None:
    values = brute_values(answers)
    expected = 100 * math.sqrt(statistics.pvariance(values) / len(values))
    summary = nps.NpsSummary.from_scores(answers)
    assert summary.standard_error == pytest.approx(expected, abs=1e-9)
    low, high = summary.interval
    assert low == pytest.approx(max(-100, summary.nps - 1.96 * expected), abs=1e-9)
    assert high == pytest.approx(min(100, summary.nps + 1.96 * expected), abs=1e-9)


@given(scores, scores)
def test_it_calls_a_change_significant_only_beyond_1_96_standard_errors(
    before: list[int], after: list[int]
) -> None:
    a, b = brute_values(before), brute_values(after)
    se = math.sqrt(statistics.pvariance(a) / len(a) + statistics.pvariance(b) / len(b)) * 100
    delta = 100 * (statistics.fmean(b) - statistics.fmean(a))
    expected = se > 0 and abs(delta) / se > 1.96
    got = nps.change_is_significant(
        nps.NpsSummary.from_scores(before), nps.NpsSummary.from_scores(after)
    )
    # Floating-point ties at exactly 1.96 are not worth asserting either way.
    if se > 0 and math.isclose(abs(delta) / se, 1.96, rel_tol=1e-9):
        return
    assert got == expected


def test_it_gives_zero_for_no_answers_and_claims_no_change() -> None:
    empty = nps.NpsSummary(0, 0, 0)
    assert empty.nps == 0 and empty.standard_error == 0
    assert not nps.change_is_significant(empty, nps.NpsSummary(10, 0, 0))


def test_it_matches_a_worked_example() -> None:
    # 50 promoters, 30 passives, 20 detractors: NPS 30, SE = sqrt((.5+.2-.09)/100) = 7.81 points.
    summary = nps.NpsSummary(50, 30, 20)
    assert summary.nps == 30
    assert summary.standard_error == pytest.approx(7.8102, abs=1e-4)
    assert summary.interval == pytest.approx((14.69, 45.31), abs=0.01)
    # 30 → 45 with n=100 each: z ≈ 1.41, not significant; with n=1000 each it is.
    assert not nps.change_is_significant(summary, nps.NpsSummary(60, 25, 15))
    assert nps.change_is_significant(nps.NpsSummary(500, 300, 200), nps.NpsSummary(600, 250, 150))
