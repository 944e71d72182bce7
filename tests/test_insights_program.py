"""Program metrics match a brute-force recount of generated cases, per owner, team
and month, on whichever database the suite runs."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from closeloop.core.periods import Grain, period_start
from closeloop.insights import program
from closeloop.loop.models import CALL_REACHED, Activity, Conversation, FollowUpCase, Message
from closeloop.surveys.models import Account, Response
from closeloop.team.models import Team, User

from .insights_data import generate, generate_cases, local_day

pytestmark = pytest.mark.django_db
ZONE = "America/Los_Angeles"


@pytest.fixture
def cases(settings: Any, manager: User, agent: User, admin_user: User) -> list[FollowUpCase]:
    settings.ORG_TIME_ZONE = ZONE
    world = generate(seed=61, answers=700)
    teams = [Team.objects.create(name="EMEA"), Team.objects.create(name="Americas")]
    return generate_cases(world, 62, [manager, agent, admin_user], teams)


def _expected(cases: list[FollowUpCase], now: Any) -> dict[str, Any]:
    """Every count, the slow way: one case at a time."""
    replied = {
        a.case_id
        for a in Activity.objects.all()
        if a.kind == "reply_received"
        or (a.kind == "call_logged" and a.data.get("outcome") in CALL_REACHED)
    }
    answers = defaultdict(list)
    for r in Response.objects.order_by("created_at", "id"):
        answers[r.person_id].append(r)
    churned_at = {a.pk: a.churned_at for a in Account.objects.all()}
    talks = {t.case_id: t for t in Conversation.objects.all()}
    answered = defaultdict(int)
    for m in Message.objects.filter(sender="customer"):
        answered[m.conversation_id] += 1
    questions = []
    c: dict[str, Any] = defaultdict(int)
    accounts: dict[str, set[int]] = defaultdict(set)
    waits = []
    for case in cases:
        automated = case.action.startswith("automated_")
        kind = "automated" if automated else "personal"
        followed = case.first_touch_at is not None
        c["cases"] += 1
        if case.created_at <= now - timedelta(hours=48):
            c[f"{kind}_due"] += 1
            met = followed and case.first_touch_at <= case.created_at + timedelta(hours=48)
            c[f"{kind}_met" if met else f"{kind}_missed"] += 1
        talk = talks.get(case.pk)
        if followed:
            waits.append(case.first_touch_at - case.created_at)
            c["followed"] += 1
            c["replied" if case.pk in replied else "not_replied"] += 1
            way = "conversation" if talk is not None else "plain"
            c[f"{way}_followed"] += 1
            if case.pk in replied:
                c[f"{way}_replied"] += 1
        else:
            c["not_followed"] += 1
        if talk is not None:
            c["conversation_offered"] += 1
            if talk.status in ("completed", "stopped"):
                c[f"conversation_{talk.status}"] += 1
            if talk.started_at is not None:
                c["conversation_started"] += 1
                questions.append(answered[talk.pk])
                if talk.summary.get("root_cause"):
                    c["root_cause_known"] += 1
        if case.status == "closed":
            c[case.resolution] += 1
        else:
            c["open"] += 1
        later = [r for r in answers[case.person_id] if r.created_at > case.response.created_at]
        status = "followed" if followed else "unfollowed"
        if later:
            c["answered_again"] += 1
            c[f"{status}_answered_again"] += 1
            if later[0].score >= 7:
                c["moved_up"] += 1
                c[f"{status}_moved_up"] += 1
        if case.account_id is not None:
            accounts[f"{status}_accounts"].add(case.account_id)
            churn = churned_at[case.account_id]
            if churn is not None and churn > case.created_at:
                accounts[f"{status}_churned"].add(case.account_id)
    c.update({k: len(v) for k, v in accounts.items()})
    c["median"] = statistics.median(waits) if waits else None
    c["questions"] = statistics.median(questions) if questions else None
    return c


def _check(got: program.ProgramFigures, want: dict[str, Any]) -> None:
    for name, value in got.counts.items():
        assert value == want.get(name, 0), name
    assert got.median_first_touch == want["median"]
    assert got.median_questions_answered == want["questions"]


@pytest.mark.parametrize("group", [None, "owner", "team", Grain.MONTH, Grain.WEEK])
def test_it_counts_every_program_figure_like_a_recount(
    cases: list[FollowUpCase], group: Any
) -> None:
    now = sorted(c.created_at for c in cases)[-6] + timedelta(hours=1)
    with time_machine.travel(now, tick=False):
        figures = program.program_figures(FollowUpCase.objects.all(), group)
    fresh = list(FollowUpCase.objects.select_related("response"))
    groups: dict[Any, list[FollowUpCase]] = defaultdict(list)
    for case in fresh:
        if group is None:
            key = None
        elif isinstance(group, Grain):
            key = period_start(local_day(case.created_at, ZONE), group)
        else:
            key = getattr(case, f"{group}_id")
        groups[key].append(case)
    assert set(figures) == set(groups)
    for key, members in groups.items():
        _check(figures[key], _expected(members, now))
    assert any(f.automated_due != f.automated_met for f in figures.values())


@pytest.mark.parametrize("group", ["owner", Grain.MONTH])
def test_it_adds_up_the_groups_to_the_same_whole(cases: list[FollowUpCase], group: Any) -> None:
    whole, groups = program.program_breakdown(FollowUpCase.objects.all(), group)
    direct = program.program_figures(FollowUpCase.objects.all())[None]
    assert whole.counts == direct.counts
    assert whole.median_first_touch == direct.median_first_touch
    assert sum(f.cases for f in groups.values()) == whole.cases


def test_it_gives_the_cases_behind_each_figure(cases: list[FollowUpCase]) -> None:
    figures = program.program_figures(FollowUpCase.objects.all())[None]
    for name, count in figures.counts.items():
        if name.endswith(("_churned", "_accounts")):
            continue
        qs = program.with_facts(FollowUpCase.objects.all()).filter(program.case_filter(name))
        assert qs.count() == count, name
    assert figures.automated_met + figures.automated_missed == figures.automated_due
    assert figures.personal_met + figures.personal_missed == figures.personal_due


def test_it_rates_against_the_targets() -> None:
    f = program.ProgramFigures(
        counts={
            "automated_due": 10,
            "automated_met": 9,
            "personal_due": 10,
            "personal_met": 8,
            "followed": 10,
            "replied": 1,
        }
    )
    assert (f.automated_rate, f.automated_on_target) == (90.0, False)
    assert (f.personal_rate, f.personal_on_target) == (80.0, True)
    assert (f.response_rate, f.response_low) == (10.0, True)
