"""Revenue at risk and themes by revenue match a brute-force recount, on whichever
database the suite runs."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from closeloop.insights import risk, top_themes
from closeloop.integrations.models import AccountSignal
from closeloop.loop.models import FollowUpCase
from closeloop.surveys.models import Account, Response, SurveyRequest
from closeloop.team.models import Team, User

from .insights_data import World, generate, generate_cases, generate_silence, tag_themes

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 8, 20, 12, tzinfo=UTC)  # after the last generated answer
THEMES = ["pricing", "bugs", "support", "performance"]


@pytest.fixture
def world(manager: User, agent: User) -> World:
    world = generate(seed=31, accounts=60, people=200, answers=1200)
    generate_cases(world, 32, [manager, agent], [Team.objects.create(name="EMEA")])
    generate_silence(world, 33, NOW)
    # Billing signals, recent and old, of every kind (a trial ending is no warning).
    kinds = [k for k, _ in AccountSignal.Kind.choices]
    AccountSignal.objects.bulk_create(
        AccountSignal(account=a, kind=kinds[i % len(kinds)], at=NOW - timedelta(days=7 * i))
        for i, a in enumerate(world.accounts[::4])
    )
    for i, r in enumerate(world.responses):
        r.tags = [THEMES[i % 4]] + ([THEMES[(i + 1) % 4]] if i % 5 == 0 else [])
        if i % 17 == 0:
            r.tags = {"not": "a list"}
    Response.objects.bulk_update(world.responses, ["tags"])
    tag_themes(world.responses)
    return world


def _silent_accounts(scores: range = range(0, 7)) -> set[int]:
    grace = NOW - timedelta(days=7)
    answers = defaultdict(list)
    for r in Response.objects.all():
        answers[r.person_id].append(r)
    sent = defaultdict(list)
    for q in SurveyRequest.objects.exclude(status="failed").filter(sent_at__isnull=False):
        if q.sent_at <= grace:
            sent[q.person_id].append(q.sent_at)
    found = set()
    for person_id, times in sent.items():
        if len(times) < 2:
            continue
        since = sorted(times)[-2]
        mine = answers[person_id]
        if any(r.created_at < since for r in mine) and not any(r.created_at >= since for r in mine):
            last = max(mine, key=lambda r: (r.created_at, r.pk))
            if last.score in scores and last.account_id is not None:
                found.add(last.person.account_id)
    return found


def _expected() -> dict[int, set[str]]:
    signals: dict[int, set[str]] = defaultdict(set)
    for case in FollowUpCase.objects.filter(loop="detractor").exclude(status="closed"):
        if case.account_id:
            signals[case.account_id].add("open_case")
    for account_id in _silent_accounts():
        signals[account_id].add("silent")
    for account_id in _silent_accounts(range(7, 9)):
        signals[account_id].add("silent_passive")
    for s in AccountSignal.objects.filter(at__gt=NOW - timedelta(days=90), at__lte=NOW):
        if s.kind != "trial_ending":
            signals[s.account_id].add("billing")
    recent, before = defaultdict(list), defaultdict(list)
    for r in Response.objects.filter(account__isnull=False):
        if NOW - timedelta(days=90) <= r.created_at < NOW:
            recent[r.account_id].append(r.score)
        elif NOW - timedelta(days=180) <= r.created_at < NOW - timedelta(days=90):
            before[r.account_id].append(r.score)
    for account_id in recent.keys() & before.keys():
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        if mean(recent[account_id]) <= mean(before[account_id]) - 1.0:
            signals[account_id].add("falling")
    live = set(Account.objects.filter(churned_at__isnull=True).values_list("pk", flat=True))
    return {k: v for k, v in signals.items() if k in live}


def test_it_finds_each_account_at_risk_and_why(world: World) -> None:
    with time_machine.travel(NOW, tick=False):
        got = {a.pk: a for a in risk.at_risk()}
        figures = risk.revenue_at_risk()
    want = _expected()
    assert set(got) == set(want)
    for pk, account in got.items():
        assert {s for s in risk.Signal if getattr(account, s.value)} == want[pk]
    shown = {s for v in want.values() for s in v}
    assert shown == {s.value for s in risk.Signal}, shown
    arr = {a.pk: a.arr_cents for a in Account.objects.all()}
    assert figures.total.arr_cents == sum(arr[pk] for pk in want)
    assert figures.total.accounts == len(want)
    for signal in risk.Signal:
        members = [pk for pk, v in want.items() if signal.value in v]
        assert figures.by_signal[signal].accounts == len(members)
        assert figures.by_signal[signal].arr_cents == sum(arr[pk] for pk in members)
    owners: dict[Any, int] = defaultdict(int)
    for a in Account.objects.filter(pk__in=want):
        owners[a.owner_id] += a.arr_cents
    assert {t.key: t.arr_cents for t in figures.by_owner} == dict(owners)


def test_it_counts_themes_by_answers_and_by_distinct_accounts_arr(world: World) -> None:
    qs = Response.objects.filter(score__lte=6, created_at__gte=datetime(2026, 1, 1, tzinfo=UTC))
    got = {t.slug: t for t in top_themes.theme_figures(qs)}
    answers, accounts = defaultdict(set), defaultdict(set)
    for r in qs:
        if isinstance(r.tags, list):
            for tag in r.tags:
                answers[tag].add(r.pk)
                if r.account_id:
                    accounts[tag].add(r.account_id)
    arr = {a.pk: a.arr_cents for a in Account.objects.all()}
    assert set(got) == set(answers)
    for tag, figure in got.items():
        assert figure.responses == len(answers[tag])
        assert figure.accounts == len(accounts[tag])
        assert figure.arr_cents == sum(arr[pk] for pk in accounts[tag])
    ranked = top_themes.top_by_arr(list(got.values()))
    assert [t.arr_cents for t in ranked] == sorted((t.arr_cents for t in ranked), reverse=True)


def test_it_filters_answers_by_tag(world: World) -> None:
    from closeloop.insights.filters import ResponseFilter

    got = set(
        ResponseFilter(tag="pricing").apply(Response.objects.all()).values_list("pk", flat=True)
    )
    want = {
        r.pk for r in Response.objects.all() if isinstance(r.tags, list) and "pricing" in r.tags
    }
    assert got == want and want
    assert not ResponseFilter(tag="pric").apply(Response.objects.all()).exists()
