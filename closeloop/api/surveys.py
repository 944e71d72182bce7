"""API v1 for survey reach: response rates per survey and wave, and silent customers.

Read-only views of `surveys.reach`; scheduling goes through the pages (waves)
or the Delighted-compatible `/v1/people`.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema

from closeloop.surveys import reach
from closeloop.surveys.models import Person, Survey

router = Router(tags=["surveys"])


class ReachOut(Schema):
    invited: int
    skipped: int
    skip_reasons: dict[str, int]
    scheduled: int
    cancelled: int
    sent: int
    delivered: int
    bounced: int
    failed: int
    opened: int
    answered: int
    reminded: int
    response_rate: float | None
    below_b2b_median: bool
    collecting: bool

    @staticmethod
    def of(r: reach.Reach) -> ReachOut:
        return ReachOut(
            invited=r.requested,
            skipped=r.skipped,
            skip_reasons=r.skip_reasons,
            scheduled=r.scheduled,
            cancelled=r.cancelled,
            sent=r.sent,
            delivered=r.delivered,
            bounced=r.bounced,
            failed=r.failed,
            opened=r.opened,
            answered=r.answered,
            reminded=r.reminded,
            response_rate=r.rate,
            below_b2b_median=r.below_median,
            collecting=r.collecting,
        )


class SurveyOut(Schema):
    slug: str
    name: str
    question: str
    reach: ReachOut


class WaveOut(Schema):
    id: int
    name: str
    starts_at: datetime
    spread_days: int
    reach: ReachOut


class SilentOut(Schema):
    person_id: int
    email: str | None
    name: str
    account_id: int | None
    account: str | None
    account_arr: float | None
    last_score: int | None
    last_answered_at: datetime | None
    silent_since: datetime


@router.get("/surveys", response=list[SurveyOut], summary="Surveys and their reach")
def list_surveys(request: HttpRequest) -> list[SurveyOut]:
    """Every survey with its invitations' reach (follow-up surveys after cases not counted)."""
    figures = reach.reach_by(reach.survey_requests(), "survey_id")
    return [
        SurveyOut(
            slug=s.slug,
            name=s.name,
            question=s.question_text(),
            reach=ReachOut.of(figures.get(s.pk, reach.Reach())),
        )
        for s in Survey.objects.order_by("name")
    ]


@router.get("/surveys/{slug}/waves", response=list[WaveOut], summary="A survey's waves")
def list_waves(request: HttpRequest, slug: str) -> list[WaveOut]:
    """Each wave of a survey with its reach, newest first."""
    survey = get_object_or_404(Survey, slug=slug)
    figures = reach.reach_by(reach.survey_requests().filter(survey=survey), "wave_id")
    return [
        WaveOut(
            id=w.pk,
            name=w.name,
            starts_at=w.starts_at,
            spread_days=w.spread_days,
            reach=ReachOut.of(figures.get(w.pk, reach.Reach())),
        )
        for w in survey.waves.order_by("-starts_at", "-pk")
    ]


def _silent(p: Person) -> SilentOut:
    account = p.account
    return SilentOut(
        person_id=p.pk,
        email=p.email,
        name=p.name,
        account_id=account.pk if account else None,
        account=account.name if account else None,
        account_arr=account.arr if account else None,
        last_score=p.last_score,  # type: ignore[attr-defined]
        last_answered_at=p.last_answered_at,  # type: ignore[attr-defined]
        silent_since=p.silent_since,  # type: ignore[attr-defined]
    )


@router.get("/silence", response=list[SilentOut], summary="Customers gone silent")
def silence(request: HttpRequest) -> list[SilentOut]:
    """People who answered before and ignored their last two invitations, by account ARR."""
    groups = reach.silence_by_account(reach.silent_people().order_by("email"))
    return [_silent(p) for g in groups for p in g.people]
