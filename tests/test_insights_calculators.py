"""The calculators: NPS from counts, a response rate, and the sample size to detect a
change, checked against their definitions; bad input is named on the page."""

from __future__ import annotations

import math

import pytest
from django.test import Client

from closeloop.core.errors import FieldError
from closeloop.core.nps import NpsSummary, change_is_significant
from closeloop.insights import calculators as c
from closeloop.team.models import User


def test_it_computes_nps_from_counts_like_the_dashboard() -> None:
    assert c.nps_from_counts(50, 30, 20) == NpsSummary(50, 30, 20)
    with pytest.raises(FieldError, match="promoters"):
        c.nps_from_counts(0, 0, 0)


def test_it_gives_a_response_rate_with_its_wilson_interval() -> None:
    r = c.response_rate(100, 12)
    assert r.rate == 12.0 and r.below_median
    low, high = r.interval
    assert low == pytest.approx(7.0, abs=0.1) and high == pytest.approx(19.8, abs=0.1)
    with pytest.raises(FieldError, match="answered"):
        c.response_rate(10, 11)


@pytest.mark.parametrize("power", c.POWERS)
def test_it_sizes_samples_so_a_real_change_passes_the_dashboards_test(power: float) -> None:
    size = c.sample_size(45, 20, 10, power)
    n = size.per_period
    # A shift of exactly the planned size, with the baseline's spread, on n answers a side.
    before = NpsSummary(round(0.45 * n), n - round(0.45 * n) - round(0.20 * n), round(0.20 * n))
    after = NpsSummary(round(0.50 * n), n - round(0.50 * n) - round(0.15 * n), round(0.15 * n))
    z = (after.nps - before.nps) / math.hypot(before.standard_error, after.standard_error)
    wanted = 1.96 + {0.5: 0.0, 0.8: 0.8416, 0.9: 1.2816}[power]
    assert z == pytest.approx(wanted, rel=0.05)
    assert change_is_significant(before, after) == (z > 1.96)
    assert c.sample_size(45, 20, 10, power, 12.4).invitations == math.ceil(n / 0.124)


def test_it_refuses_impossible_plans_naming_the_field() -> None:
    with pytest.raises(FieldError, match="detractor_share"):
        c.sample_size(70, 40, 10)
    with pytest.raises(FieldError, match="change"):
        c.sample_size(40, 20, 0)
    with pytest.raises(FieldError, match="power"):
        c.sample_size(40, 20, 10, 0.7)


@pytest.mark.django_db
def test_it_answers_on_the_page_and_names_bad_input(viewer: User) -> None:
    client = Client()
    client.force_login(viewer)
    page = client.get(
        "/insights/calculators/",
        {"calc": "nps", "promoters": "50", "passives": "30", "detractors": "20"},
    )
    assert page.status_code == 200 and '<p class="big">30.0</p>' in page.content.decode()
    page = client.get(
        "/insights/calculators/", {"calc": "rate", "delivered": "ten", "answered": "1"}
    )
    assert page.status_code == 422
    assert "delivered: &#x27;ten&#x27; is not a whole number" in page.content.decode()
    page = client.get(
        "/insights/calculators/",
        {"calc": "size", "promoter_share": "45", "detractor_share": "20", "change": "nan"},
    )
    assert page.status_code == 422 and "change: " in page.content.decode()
