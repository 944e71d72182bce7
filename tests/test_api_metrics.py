"""GET /api/v1/metrics: NPS for a period and segment, against the previous period."""

from __future__ import annotations

import pytest
import time_machine

from .conftest import ApiClient, answer

pytestmark = pytest.mark.django_db


def _post(api: ApiClient, score: int, day: str, tier: str = "smb", plan: str = "pro") -> None:
    r = api.post_json(
        "/api/v1/responses",
        answer(
            email=f"p{score}-{day}-{tier}@x.io",
            score=score,
            created_at=f"{day}T08:00:00Z",
            person={
                "email": f"p{score}-{day}-{tier}@x.io",
                "properties": {"plan": plan},
                "account": {"name": tier, "tier": tier},
            },
        ),
    )
    assert r.status_code == 201, r.content


def test_it_reports_the_period_and_the_previous_one(api: ApiClient) -> None:
    # Previous period 2026-01-01..01-10: 2 promoters, 2 detractors (NPS 0).
    for score, day in [(10, "2026-01-01"), (9, "2026-01-10"), (0, "2026-01-05"), (6, "2026-01-06")]:
        _post(api, score, day)
    # Current 2026-01-11..01-20 (until inclusive): 3 promoters, 1 passive (NPS 75).
    for score, day in [(10, "2026-01-11"), (9, "2026-01-15"), (9, "2026-01-20"), (7, "2026-01-20")]:
        _post(api, score, day)
    _post(api, 0, "2026-01-21")  # the day after: outside both periods
    m = api.get_json("/api/v1/metrics", {"since": "2026-01-11", "until": "2026-01-20"}).json()
    assert (m["promoters"], m["passives"], m["detractors"], m["responses"]) == (3, 1, 0, 4)
    assert m["nps"] == 75.0
    assert m["promoter_percent"] == 75.0 and m["passive_percent"] == 25.0
    assert m["nps_ci_low"] == pytest.approx(32.6, abs=0.1)  # 75 − 1.96·sqrt(.75−.5625)/2·100
    assert m["nps_ci_high"] == 100.0
    prev = m["previous"]
    assert (prev["since"], prev["until"]) == ("2026-01-01", "2026-01-10")
    assert (prev["promoters"], prev["detractors"], prev["nps"]) == (2, 2, 0.0)
    assert m["change"] == 75.0
    # Four answers a period cannot carry even a 75-point move: z = 75 / sqrt(50² + 21.7²) ≈ 1.38.
    assert m["change_significant"] is False


def test_it_calls_a_large_change_on_enough_answers_significant(api: ApiClient) -> None:
    for i in range(20):
        _post(api, 10 if i < 15 else 0, f"2026-01-{i + 12:02d}")  # NPS +50
        _post(api, 10 if i < 5 else 0, f"2026-02-{i + 1:02d}")  # NPS −50
    m = api.get_json("/api/v1/metrics", {"since": "2026-02-01", "until": "2026-02-20"}).json()
    assert (m["nps"], m["previous"]["nps"]) == (-50.0, 50.0)
    assert m["change_significant"] is True


def test_it_does_not_call_a_small_wobble_significant(api: ApiClient) -> None:
    for score, day in [(10, "2026-02-01"), (3, "2026-02-02"), (8, "2026-02-03")]:
        _post(api, score, day)
    for score, day in [(10, "2026-02-08"), (9, "2026-02-09"), (3, "2026-02-10")]:
        _post(api, score, day)
    m = api.get_json("/api/v1/metrics", {"since": "2026-02-08", "until": "2026-02-14"}).json()
    assert m["change"] == pytest.approx(33.3, abs=0.1)
    assert m["change_significant"] is False


def test_it_filters_by_segment(api: ApiClient) -> None:
    _post(api, 10, "2026-03-01", tier="enterprise", plan="pro")
    _post(api, 2, "2026-03-01", tier="smb", plan="pro")
    _post(api, 9, "2026-03-02", tier="smb", plan="basic")
    q = {"since": "2026-03-01", "until": "2026-03-31"}
    assert api.get_json("/api/v1/metrics", {**q, "tier": "smb"}).json()["nps"] == 0.0
    assert api.get_json("/api/v1/metrics", {**q, "property.plan": "pro"}).json()["responses"] == 2
    assert api.get_json("/api/v1/metrics", {**q, "account": "nope"}).json()["responses"] == 0


@time_machine.travel("2026-04-30T12:00:00Z", tick=False)
def test_it_defaults_to_the_last_30_days(api: ApiClient) -> None:
    _post(api, 10, "2026-04-01")
    _post(api, 0, "2026-03-31")
    m = api.get_json("/api/v1/metrics").json()
    assert (m["since"], m["until"]) == ("2026-04-01", "2026-04-30")
    assert m["responses"] == 1 and m["previous"]["responses"] == 1


def test_it_answers_an_empty_period_with_zeros(api: ApiClient) -> None:
    m = api.get_json("/api/v1/metrics", {"since": "2020-01-01", "until": "2020-01-31"}).json()
    assert m["responses"] == 0 and m["nps"] == 0.0 and m["change_significant"] is False


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "2026-13-01"}, "since"),
        ({"until": "x"}, "until"),
        ({"since": "2026-05-01", "until": "2026-04-01"}, "until"),
        ({"category": "fan"}, "category"),
    ],
)
def test_it_names_a_bad_parameter(api: ApiClient, query: dict[str, str], field: str) -> None:
    r = api.get_json("/api/v1/metrics", query)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", field]
