"""Which follow-up moves customers: the breakdown by action, channel, detractor type and
gesture, and the follow-up return, against a brute-force recount of generated cases."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from closeloop.insights import effects
from closeloop.loop.models import CALL_REACHED, Activity, Conversation, FollowUpCase, Gesture
from closeloop.surveys.models import Account, Response
from closeloop.team.models import Team, User

from .conftest import ApiClient
from .insights_data import generate, generate_cases

pytestmark = pytest.mark.django_db


@pytest.fixture
def cases(manager: User, agent: User) -> list[FollowUpCase]:
    world = generate(seed=71, answers=600)
    made = generate_cases(world, 72, [manager, agent], [Team.objects.create(name="EMEA")])
    rng = random.Random(73)
    kinds = Gesture.Kind.values
    gestures = []
    for case in made:
        case.detractor_type = rng.choice(["", *FollowUpCase.DetractorType.values])
        for kind in rng.sample(kinds, rng.choice([0, 0, 1, 2])):
            gestures.append(Gesture(case=case, kind=kind, value_cents=rng.choice([None, 5000])))
    FollowUpCase.objects.bulk_update(made, ["detractor_type"])
    Gesture.objects.bulk_create(gestures)
    return made


def _recount(dimension: str, now: Any) -> dict[str, dict[str, Any]]:
    """Every group's figures, one case at a time."""
    reached = {
        a.case_id
        for a in Activity.objects.filter(kind="call_logged")
        if a.data.get("outcome") in CALL_REACHED
    }
    talked = {t.case_id for t in Conversation.objects.all() if t.started_at is not None}
    kinds = defaultdict(set)
    for g in Gesture.objects.all():
        kinds[g.case_id].add(g.kind)
    answers = defaultdict(list)
    for r in Response.objects.order_by("created_at", "id"):
        answers[r.person_id].append(r)
    churned_at = {a.pk: a.churned_at for a in Account.objects.all()}
    groups: dict[str, dict[str, Any]] = {}
    for case in FollowUpCase.objects.select_related("response"):
        if dimension == "channel":
            if case.pk in reached:
                keys = ["call"]
            elif case.pk in talked:
                keys = ["conversation"]
            else:
                keys = ["email" if case.first_touch_at else "none"]
        elif dimension == "gesture":
            keys = sorted(kinds[case.pk]) or ["none"]
        else:
            keys = [getattr(case, dimension) or "none"]
        later = [r for r in answers[case.person_id] if r.created_at > case.response.created_at]
        for key in keys:
            g = groups.setdefault(
                key, {"cases": 0, "changes": [], "waits": [], "due": 0, "churned": 0}
            )
            g["cases"] += 1
            if later:
                g["changes"].append(later[0].score - case.response.score)
                if later[0].score >= 7:
                    g["waits"].append(later[0].created_at - case.created_at)
            if case.account_id and case.created_at <= now - timedelta(days=90):
                g["due"] += 1
                churn = churned_at[case.account_id]
                if churn and case.created_at < churn <= case.created_at + timedelta(days=90):
                    g["churned"] += 1
    return groups


@pytest.mark.parametrize("dimension", list(effects.DIMENSIONS))
def test_it_breaks_down_what_followed_each_group_like_a_recount(
    cases: list[FollowUpCase], dimension: str
) -> None:
    now = max(c.created_at for c in cases) + timedelta(days=30)
    with time_machine.travel(now, tick=False):
        got = {e.key: e for e in effects.effects(FollowUpCase.objects.all(), dimension)}
    want = _recount(dimension, now)
    assert set(got) == set(want)
    for key, w in want.items():
        e = got[key]
        assert e.cases == w["cases"], key
        assert sorted(e.changes) == sorted(w["changes"]), key
        assert e.recovered == len(w["waits"]), key
        assert e.median_time_to_recovery == (statistics.median(w["waits"]) if w["waits"] else None)
        assert (e.churn_due, e.churned) == (w["due"], w["churned"]), key
    assert len(got) > 2
    assert any(e.recovered for e in got.values()) and any(e.churned for e in got.values())
    if dimension == "gesture":
        # A case with two gestures is under both: the groups hold more than the cases.
        assert sum(e.cases for e in got.values()) > len(cases)
    else:
        assert sum(e.cases for e in got.values()) == len(cases)


def test_it_counts_each_account_once_in_the_follow_up_return(cases: list[FollowUpCase]) -> None:
    now = max(c.created_at for c in cases) + timedelta(days=30)
    with time_machine.travel(now, tick=False):
        back = effects.follow_up_return(FollowUpCase.objects.all())
    latest: dict[int, Any] = {}
    followed: dict[int, bool] = {}
    for case in FollowUpCase.objects.filter(
        account__isnull=False, created_at__lte=now - timedelta(days=90)
    ):
        if case.account_id in latest and latest[case.account_id] > case.created_at:
            continue
        latest[case.account_id] = case.created_at
        followed[case.account_id] = case.first_touch_at is not None
    sides: dict[bool, list[int]] = {True: [0, 0, 0, 0], False: [0, 0, 0, 0]}
    for account in Account.objects.filter(pk__in=latest):
        s = sides[followed[account.pk]]
        live = account.churned_at is None or account.churned_at > latest[account.pk] + timedelta(
            days=90
        )
        s[0] += 1
        s[1] += live
        s[2] += account.arr_cents
        s[3] += account.arr_cents if live else 0
    for side, got in ((True, back.followed), (False, back.not_followed)):
        assert [got.accounts, got.live_accounts, got.arr_cents, got.live_arr_cents] == sides[side]
    assert back.followed.accounts and back.not_followed.accounts
    assert back.difference == pytest.approx(
        back.followed.kept_rate - back.not_followed.kept_rate  # type: ignore[operator]
    )


def test_it_flags_small_groups_and_gives_an_interval() -> None:
    small = effects.Effect("call", cases=12, changes=[3, 5, -1], recovered=2)
    assert small.recovered_small and small.recovered_rate == pytest.approx(200 / 3)
    low, high = small.recovered_interval  # type: ignore[misc]
    assert low < small.recovered_rate < high  # type: ignore[operator]
    assert high - low > 50
    assert small.median_score_change == 3.0
    assert effects.Effect("none").recovered_interval is None


def test_it_lists_the_cases_behind_a_group(cases: list[FollowUpCase]) -> None:
    for dimension in effects.DIMENSIONS:
        for e in effects.effects(FollowUpCase.objects.all(), dimension):
            matching = FollowUpCase.objects.filter(effects.case_filter(dimension, e.key))
            assert matching.count() == e.cases, (dimension, e.key)


def test_it_serves_the_breakdown_and_refuses_a_bad_dimension(
    cases: list[FollowUpCase], read_only_api: ApiClient
) -> None:
    r = read_only_api.get_json(
        "/api/v1/insights/effects", {"by": "channel", "since": "2025-01-01", "until": "2027-01-01"}
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert {g["key"] for g in body["groups"]} == {"call", "conversation", "email", "none"}
    call = next(g for g in body["groups"] if g["key"] == "call")
    assert call["label"] == "Call (reached)"
    assert call["recovered_ci"][0] <= call["recovered_rate"] <= call["recovered_ci"][1]
    assert body["follow_up_return"]["followed"]["accounts"] > 0
    bad = read_only_api.get_json("/api/v1/insights/effects", {"by": "weather"})
    assert bad.status_code == 422
    assert "by" in bad.content.decode()


def test_it_gives_the_follow_up_return_an_interval_from_its_accounts() -> None:
    def side(accounts: int, live: int) -> effects.Side:
        s = effects.Side(accounts=accounts, live_accounts=live)
        s.members = [(1_000_000, i < live) for i in range(accounts)]
        s.arr_cents = 1_000_000 * accounts
        s.live_arr_cents = 1_000_000 * live
        return s

    clear = effects.FollowUpReturn(followed=side(200, 180), not_followed=side(200, 120))
    assert clear.difference == pytest.approx(30.0)
    low, high = clear.difference_interval  # type: ignore[misc]
    assert 20 < low < 30 < high < 40
    # Few accounts on a side: no interval; equal sides: one that spans no difference.
    assert effects.FollowUpReturn(side(200, 180), side(12, 6)).difference_interval is None
    low, high = effects.FollowUpReturn(side(60, 45), side(60, 45)).difference_interval  # type: ignore[misc]
    assert low < 0 < high
