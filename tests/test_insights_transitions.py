"""The transition matrix and the people behind each cell match a brute-force walk
over each person's answers, on whichever database the suite runs."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from itertools import pairwise
from typing import Any

import pytest

from closeloop.core.nps import Category, category
from closeloop.insights.transitions import CLASSES, cell_moves, matrix
from closeloop.surveys.models import Response

from .insights_data import World, generate, local_day

pytestmark = pytest.mark.django_db
ZONE = "Asia/Kolkata"
SINCE, UNTIL = date(2026, 1, 1), date(2026, 3, 31)


@pytest.fixture
def world(settings: Any) -> World:
    settings.ORG_TIME_ZONE = ZONE
    # Few people, many answers each: most answers have a predecessor.
    return generate(seed=7, people=60, answers=800)


def _pairs(world: World, keep: Any = lambda r: True) -> list[tuple[Response, Response]]:
    answers = defaultdict(list)
    for r in sorted(world.responses, key=lambda r: (r.created_at, r.pk)):
        if keep(r):
            answers[r.person_id].append(r)
    return [
        (before, after)
        for series in answers.values()
        for before, after in pairwise(series)
        if SINCE <= local_day(after.created_at, ZONE) <= UNTIL
    ]


def test_it_counts_moves_between_consecutive_answers(world: World) -> None:
    got = matrix(Response.objects.all(), SINCE, UNTIL)
    want = Counter((category(b.score), category(a.score)) for b, a in _pairs(world))
    assert got.cells == dict(want) and got.total > 100
    assert got.improved + got.worsened + sum(got.count(c, c) for c in CLASSES) == got.total


def test_it_pairs_answers_within_the_segment_only(world: World) -> None:
    survey = world.surveys[0]
    got = matrix(Response.objects.filter(survey=survey), SINCE, UNTIL)
    want = Counter(
        (category(b.score), category(a.score))
        for b, a in _pairs(world, lambda r: r.survey_id == survey.pk)
    )
    assert got.cells == dict(want)


def test_it_lists_the_people_behind_a_cell(world: World) -> None:
    moves = cell_moves(Response.objects.all(), SINCE, UNTIL, Category.DETRACTOR, Category.PROMOTER)
    want = [
        (b, a)
        for b, a in _pairs(world)
        if category(b.score) is Category.DETRACTOR and category(a.score) is Category.PROMOTER
    ]
    assert {m.response_id for m in moves} == {a.pk for _, a in want}
    by_id = {a.pk: (b, a) for b, a in want}
    for move in moves:
        before, after = by_id[move.response_id]
        assert (move.previous_score, move.score) == (before.score, after.score)
        assert (move.previous_at, move.answered_at) == (before.created_at, after.created_at)
        assert move.email == after.person.email
    assert [m.answered_at for m in moves] == sorted((m.answered_at for m in moves), reverse=True)
