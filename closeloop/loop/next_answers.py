"""Each case's next answer: the person's first answer after the one that opened it.

Whether a detractor answered a later survey, and how (docs/domain.md §7: score change,
recovery), is kept on the case (`next_score`, `next_answered_at`) as answers arrive or
change, so the program metrics and the effects of follow-up read a column instead of
looking up every case's person's answers (an index probe per case: over a year of
cases at ten million answers, most of a minute).

"First after" means the earliest answer with a strictly later `created_at` (the lower
id among equals), whatever order the answers arrived in: a backfilled import can
become an older case's next answer.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import F

from closeloop.surveys.models import Response

from .models import FollowUpCase

# Each person's answers as (created_at, id, score), in that order.
History = dict[int, list[tuple[datetime, int, int]]]


def history(people: Iterable[int]) -> History:
    """These people's answers, oldest first (one query). Triage reads it for the score
    before a new answer and `refresh` for the one after a case's."""
    found: History = defaultdict(list)
    for pk, person_id, at, score in (
        Response.objects.filter(person_id__any=set(people))
        .order_by("created_at", "pk")
        .values_list("pk", "person_id", "created_at", "score")
    ):
        found[person_id].append((at, pk, score))
    return found


def refresh(people: Iterable[int], answers: History | None = None) -> int:
    """Bring the next answer of every case of these people up to date; how many changed.
    `answers` is their `history` when the caller has read it already; otherwise it is
    read here. One query for their cases and one update of the changed ones."""
    wanted = set(people)
    if not wanted:
        return 0
    if answers is None:
        answers = history(wanted)
    changed = []
    for case in (
        FollowUpCase.objects.filter(person_id__any=wanted, response__isnull=False)
        .annotate(opened_at=F("response__created_at"))
        .only("pk", "person_id", "next_score", "next_answered_at")
    ):
        mine = answers.get(case.person_id, [])
        i = bisect_right(mine, case.opened_at, key=lambda answer: answer[0])
        found = (mine[i][2], mine[i][0]) if i < len(mine) else (None, None)
        if found != (case.next_score, case.next_answered_at):
            case.next_score, case.next_answered_at = found
            changed.append(case)
    FollowUpCase.objects.bulk_update(changed, ["next_score", "next_answered_at"], batch_size=500)
    return len(changed)


# Every case at once, in SQL: the migration that added the columns, and a database whose
# cases were written around closeloop (the insight bench's generated history).
_BACKFILL = {
    "postgresql": """
        UPDATE loop_followupcase c SET next_score = n.score, next_answered_at = n.created_at
        FROM loop_followupcase k
        JOIN surveys_response o ON o.id = k.response_id
        LEFT JOIN LATERAL (
            SELECT r.score, r.created_at FROM surveys_response r
            WHERE r.person_id = k.person_id AND r.created_at > o.created_at
            ORDER BY r.created_at, r.id LIMIT 1
        ) n ON true
        WHERE c.id = k.id
          AND (c.next_score, c.next_answered_at) IS DISTINCT FROM (n.score, n.created_at)
    """,
    "sqlite": """
        UPDATE loop_followupcase SET
            next_score = (
                SELECT r.score FROM surveys_response r, surveys_response o
                WHERE o.id = loop_followupcase.response_id
                  AND r.person_id = loop_followupcase.person_id
                  AND r.created_at > o.created_at
                ORDER BY r.created_at, r.id LIMIT 1),
            next_answered_at = (
                SELECT r.created_at FROM surveys_response r, surveys_response o
                WHERE o.id = loop_followupcase.response_id
                  AND r.person_id = loop_followupcase.person_id
                  AND r.created_at > o.created_at
                ORDER BY r.created_at, r.id LIMIT 1)
        WHERE response_id IS NOT NULL
    """,
}


def backfill(using: object = None) -> int:
    """Set every case's next answer from the answers stored; how many rows were written."""
    conn = using or connection
    with conn.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(_BACKFILL[conn.vendor])  # type: ignore[attr-defined]
        return int(cursor.rowcount)
