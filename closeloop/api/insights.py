"""API v1 for insights: trend, segments, program metrics, transitions, revenue at
risk, and incidents (which can also be recorded and deleted here).

Every read takes the segment filters of GET /responses (since, until, survey, tier,
property.<key>, segment/segment_value, …); a bad value is a 422 naming it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from closeloop.core.errors import FieldError
from closeloop.core.nps import NpsSummary
from closeloop.core.periods import Grain, day_start
from closeloop.insights import effects, health, params, program, risk, top_themes, transitions
from closeloop.insights import segments as seg
from closeloop.insights.filters import ResponseFilter
from closeloop.insights.models import HealthBacktest, Incident, with_spikes
from closeloop.insights.schemas import IncidentIn
from closeloop.insights.trends import trend
from closeloop.surveys.models import Response
from closeloop.team.models import Team, User

from .access import require_write

router = Router(tags=["insights"])


class Nps(Schema):
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    ci_low: float | None
    ci_high: float | None

    @staticmethod
    def of(s: NpsSummary) -> Nps:
        some = s.responses > 0
        return Nps(
            responses=s.responses,
            promoters=s.promoters,
            passives=s.passives,
            detractors=s.detractors,
            nps=round(s.nps, 2) if some else None,
            ci_low=round(s.interval[0], 2) if some else None,
            ci_high=round(s.interval[1], 2) if some else None,
        )


def _filter(request: HttpRequest, days: int) -> tuple[ResponseFilter, date, date]:
    flt = ResponseFilter.from_params(request.GET)
    since, until = flt.period(days)
    return flt, since, until


class TrendPointOut(Schema):
    start: date
    end: date
    label: str
    figures: Nps
    detractor_percent: float | None
    change: float | None
    change_significant: bool
    structural_problem: bool


@router.get("/insights/trend", response=list[TrendPointOut], summary="NPS per period")
def get_trend(request: HttpRequest) -> list[dict[str, Any]]:
    """NPS per week, month or quarter (`grain`, default month) for every period touching
    [since, until] (default: the last 365 days), in ORG_TIME_ZONE. `change_significant`
    is the 95% test against the period before; `structural_problem` marks > 40% detractors."""
    flt, since, until = _filter(request, 365)
    grain = params.grain(request.GET)
    if (until - since).days > 3660:
        raise FieldError("since", "at most ten years at a time", where="query")
    points = trend(flt.apply_segment(Response.objects.all()), since, until, grain)
    return [
        {
            "start": p.start,
            "end": p.end,
            "label": p.label,
            "figures": Nps.of(p.summary),
            "detractor_percent": round(p.detractor_share, 2) if p.summary.responses else None,
            "change": round(p.change, 2) if p.change is not None else None,
            "change_significant": p.significant,
            "structural_problem": p.structural,
        }
        for p in points
    ]


class SegmentOut(Schema):
    value: str
    current: Nps
    previous: Nps
    change: float | None
    change_significant: bool
    against_overall_trend: bool
    small_sample: bool


class SegmentsOut(Schema):
    dimension: str
    since: date
    until: date
    overall: Nps
    overall_previous: Nps
    segments: list[SegmentOut]


@router.get("/insights/segments", response=SegmentsOut, summary="NPS per segment")
def get_segments(request: HttpRequest) -> dict[str, Any]:
    """NPS per value of `by` (tier, plan, tenure, company_size, industry, survey or
    property:<name>) for [since, until] (default the last 90 days) beside the period before;
    segments moving against the overall trend first, small ones (n < 30) last."""
    flt, since, until = _filter(request, 90)
    by = request.GET.get("by") or "tier"
    seg.check_dimension(by)
    table = seg.segment_table(flt.apply_segment(Response.objects.all()), by, since, until)
    return {
        "dimension": by,
        "since": since,
        "until": until,
        "overall": Nps.of(table.overall.current),
        "overall_previous": Nps.of(table.overall.previous),
        "segments": [
            {
                "value": r.value,
                "current": Nps.of(r.current),
                "previous": Nps.of(r.previous),
                "change": round(r.change, 2) if r.change is not None else None,
                "change_significant": r.significant,
                "against_overall_trend": r.against_trend,
                "small_sample": r.small,
            }
            for r in table.rows
        ],
    }


class ProgramOut(Schema):
    key: str | None = None
    name: str
    counts: dict[str, int]
    automated_48h_rate: float | None
    personal_48h_rate: float | None
    response_rate: float | None
    resolution_rate: float | None
    score_change_rate: float | None
    followed_churn_rate: float | None
    unfollowed_churn_rate: float | None
    median_hours_to_first_touch: float | None
    conversation_start_rate: float | None = Field(description="started, of those offered")
    conversation_completion_rate: float | None = Field(description="ran to the end, of started")
    median_questions_answered: float | None
    root_cause_rate: float | None = Field(description="root cause found, of all cases")
    conversation_reply_rate: float | None = Field(
        description="responded, of followed-up cases offered the conversation"
    )
    plain_reply_rate: float | None = Field(
        description="responded, of followed-up cases with a plain email (no conversation)"
    )


def _program_json(key: Any, name: str, f: program.ProgramFigures) -> dict[str, Any]:
    def r(value: float | None) -> float | None:
        return round(value, 2) if value is not None else None

    median = f.median_first_touch
    return {
        "key": str(key) if key is not None else None,
        "name": name,
        "counts": f.counts,
        "automated_48h_rate": r(f.automated_rate),
        "personal_48h_rate": r(f.personal_rate),
        "response_rate": r(f.response_rate),
        "resolution_rate": r(f.resolution_rate),
        "score_change_rate": r(f.score_change_rate),
        "followed_churn_rate": r(f.followed_churn_rate),
        "unfollowed_churn_rate": r(f.unfollowed_churn_rate),
        "median_hours_to_first_touch": r(median.total_seconds() / 3600) if median else None,
        "conversation_start_rate": r(f.conversation_start_rate),
        "conversation_completion_rate": r(f.conversation_completion_rate),
        "median_questions_answered": f.median_questions_answered,
        "root_cause_rate": r(f.root_cause_rate),
        "conversation_reply_rate": r(f.conversation_reply_rate),
        "plain_reply_rate": r(f.plain_reply_rate),
    }


@router.get("/insights/program", response=list[ProgramOut], summary="Program metrics")
def get_program(request: HttpRequest) -> list[dict[str, Any]]:
    """The follow-up program's metrics over the cases of `loop` (default detractor) opened
    in [since, until] (default the last 90 days): the whole first, then per `by` (owner,
    team, week, month or quarter; default owner)."""
    _, since, until = _filter(request, 90)
    loop = params.loop(request.GET)
    by = params.choice(request.GET, "by", "owner", ["owner", "team", *[g.value for g in Grain]])
    cases = program.cases_opened(since, until, loop)
    group: str | Grain = Grain(by) if by in Grain.__members__.values() else by
    whole, groups = program.program_breakdown(cases, group)
    names: dict[Any, str] = {}
    if by == "owner":
        names = {u.pk: u.email for u in User.objects.filter(pk__in=[k for k in groups if k])}
    elif by == "team":
        names = dict(Team.objects.filter(pk__in=[k for k in groups if k]).values_list("pk", "name"))
    rows = [_program_json(None, "all", whole)]
    for key in sorted(groups, key=lambda k: (k is None, str(k))):
        label = key.isoformat() if isinstance(key, date) else names.get(key, "none")
        rows.append(_program_json(key, label, groups[key]))
    return rows


class EffectOut(Schema):
    key: str
    label: str
    cases: int
    answered_again: int = Field(description="answered a later survey (a check-back counts)")
    recovered: int = Field(description="whose next answer was passive or promoter")
    recovered_rate: float | None
    recovered_ci: tuple[float, float] | None = Field(description="Wilson 95% interval")
    recovered_small: bool = Field(description=f"fewer than {effects.MIN_N} answered again")
    median_score_change: float | None
    churn_due: int = Field(description="cases on an account opened at least 90 days ago")
    churned: int = Field(description="whose account churned within 90 days of the case")
    churn_rate: float | None
    churn_ci: tuple[float, float] | None
    churn_small: bool
    median_days_to_recovery: float | None


class ReturnSideOut(Schema):
    accounts: int
    live_accounts: int
    arr: float
    live_arr: float
    kept_rate: float | None = Field(description="share of the ARR still live 90 days on")
    live_ci: tuple[float, float] | None = Field(description="of the share of accounts live")
    small: bool


class ReturnOut(Schema):
    followed: ReturnSideOut
    not_followed: ReturnSideOut
    difference: float | None = Field(description="points of ARR kept, followed minus not")
    difference_ci: tuple[float, float] | None = Field(
        description="its 95% interval (bootstrap over accounts); null under 30 on a side"
    )
    worth: float | None = Field(description="the difference applied to the followed ARR")


class EffectsOut(Schema):
    since: date
    until: date
    by: str
    groups: list[EffectOut]
    follow_up_return: ReturnOut


def _ci(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    return (round(interval[0], 2), round(interval[1], 2)) if interval else None


def _r(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def effect_json(by: str, e: effects.Effect) -> dict[str, Any]:
    wait = e.median_time_to_recovery
    return {
        "key": e.key,
        "label": effects.label(by, e.key),
        "cases": e.cases,
        "answered_again": e.answered_again,
        "recovered": e.recovered,
        "recovered_rate": _r(e.recovered_rate),
        "recovered_ci": _ci(e.recovered_interval),
        "recovered_small": e.recovered_small,
        "median_score_change": e.median_score_change,
        "churn_due": e.churn_due,
        "churned": e.churned,
        "churn_rate": _r(e.churn_rate),
        "churn_ci": _ci(e.churn_interval),
        "churn_small": e.churn_small,
        "median_days_to_recovery": _r(wait.total_seconds() / 86400) if wait else None,
    }


def _side_json(side: effects.Side) -> dict[str, Any]:
    return {
        "accounts": side.accounts,
        "live_accounts": side.live_accounts,
        "arr": side.arr_cents / 100,
        "live_arr": side.live_arr_cents / 100,
        "kept_rate": _r(side.kept_rate),
        "live_ci": _ci(side.live_interval),
        "small": side.small,
    }


@router.get("/insights/effects", response=EffectsOut, summary="Which follow-up moves customers")
def get_effects(request: HttpRequest) -> dict[str, Any]:
    """The cases of `loop` (default detractor) opened in [since, until] (default the last
    90 days) per `by` (action, channel, detractor_type or gesture; default action): share
    recovered, median score change, churn within 90 days, median time to recovery; and
    the follow-up return (ARR of the accounts still live 90 days after their case)."""
    _, since, until = _filter(request, 90)
    loop = params.loop(request.GET)
    by = params.choice(request.GET, "by", "action", list(effects.DIMENSIONS))
    cases = program.cases_opened(since, until, loop)
    back = effects.follow_up_return(cases)
    worth = back.worth_cents
    return {
        "since": since,
        "until": until,
        "by": by,
        "groups": [effect_json(by, e) for e in effects.effects(cases, by)],
        "follow_up_return": {
            "followed": _side_json(back.followed),
            "not_followed": _side_json(back.not_followed),
            "difference": _r(back.difference),
            "difference_ci": _ci(back.difference_interval),
            "worth": worth / 100 if worth is not None else None,
        },
    }


class HealthReasonOut(Schema):
    points: int
    reason: str


class HealthOut(Schema):
    account_id: int
    external_id: str | None
    name: str
    arr: float
    score: int = Field(description="0–100: 100 less the points of each reason")
    band: str = Field(description="healthy (70–100), watch (40–69) or at risk (0–39)")
    reasons: list[HealthReasonOut]


def health_json(h: health.Health) -> dict[str, Any]:
    a = h.account
    return {
        "account_id": a.pk,
        "external_id": a.external_id,
        "name": a.name,
        "arr": a.arr,
        "score": h.score,
        "band": h.band,
        "reasons": [{"points": p, "reason": r} for p, r in h.reasons],
    }


@router.get("/insights/health", response=list[HealthOut], summary="Account health scores")
def get_health(request: HttpRequest, band: str = "", limit: int = 100) -> list[dict[str, Any]]:
    """Every live account's health score (0–100) with its reasons, the least healthy
    first; `band` keeps one band; `limit` 1–1000."""
    if band and band not in health.BAND_NAMES:
        raise FieldError("band", "must be one of " + ", ".join(health.BAND_NAMES), where="query")
    if not 1 <= limit <= 1000:
        raise FieldError("limit", "must be from 1 to 1000", where="query")
    found = [h for h in health.scores() if not band or h.band == band]
    return [health_json(h) for h in found[:limit]]


class BacktestOut(Schema):
    finished_at: datetime | None = Field(description="null before the first run")
    model_in_use: str = Field(description="fitted or written")
    error: str
    result: dict[str, Any] = Field(
        description="months (at, accounts, churned, health, nps, fitted AUCs); health, nps "
        "and gain with their 95% interval; rows; churned_accounts; fit (weights, "
        "fitted_auc, written_auc, in_use, why)"
    )


@router.get("/insights/health/backtest", response=BacktestOut, summary="The latest health backtest")
def get_health_backtest(request: HttpRequest) -> dict[str, Any]:
    """The latest finished backtest of account health against NPS alone (AUC for churn
    within 90 days, by month) and the model it put in use (docs/insights.md)."""
    last = HealthBacktest.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    if last is None:
        return {"finished_at": None, "model_in_use": "written", "error": "", "result": {}}
    return {
        "finished_at": last.finished_at,
        "model_in_use": "fitted" if last.in_use else "written",
        "error": last.error,
        "result": last.result,
    }


class TransitionsOut(Schema):
    since: date
    until: date
    cells: dict[str, dict[str, int]]
    improved: int
    worsened: int
    total: int


@router.get("/insights/transitions", response=TransitionsOut, summary="Transition matrix")
def get_transitions(request: HttpRequest) -> dict[str, Any]:
    """How the period's answers moved from each person's previous answer:
    cells[before][after] = number of people (default period: the last 90 days)."""
    flt, since, until = _filter(request, 90)
    grid = transitions.matrix(flt.apply_segment(Response.objects.all()), since, until)
    return {
        "since": since,
        "until": until,
        "cells": {
            b.value: {a.value: grid.count(b, a) for a in transitions.CLASSES}
            for b in transitions.CLASSES
        },
        "improved": grid.improved,
        "worsened": grid.worsened,
        "total": grid.total,
    }


class RiskTotalOut(Schema):
    key: str | None
    accounts: int
    arr_cents: int


class ThemeRiskOut(Schema):
    slug: str
    name: str
    responses: int
    accounts: int
    arr_cents: int


class RiskOut(Schema):
    total: RiskTotalOut
    by_signal: list[RiskTotalOut]
    by_owner: list[RiskTotalOut]
    by_tier: list[RiskTotalOut]
    by_theme: list[ThemeRiskOut]


def _total(t: risk.RiskTotal, key: Any = None) -> dict[str, Any]:
    return {"key": key, "accounts": t.accounts, "arr_cents": t.arr_cents}


@router.get("/insights/revenue-at-risk", response=RiskOut, summary="Revenue at risk")
def get_risk(request: HttpRequest) -> dict[str, Any]:
    """ARR of live accounts with an open detractor case, a silent detractor or passive, a
    falling score or a billing warning, each account once; per signal (open_case, silent,
    silent_passive, falling, billing), owner (email), tier and detractor theme."""
    figures = risk.revenue_at_risk()
    emails = dict(User.objects.values_list("pk", "email"))
    return {
        "total": _total(figures.total),
        "by_signal": [_total(t, s.value) for s, t in figures.by_signal.items()],
        "by_owner": [_total(t, emails.get(t.key)) for t in figures.by_owner],
        "by_tier": [_total(t, t.key) for t in figures.by_tier],
        "by_theme": [t.__dict__ for t in figures.by_theme],
    }


class IncidentOut(Schema):
    id: int
    kind: str
    title: str
    description: str
    started_at: datetime
    ended_at: datetime | None
    detractors_before_percent: float | None
    detractors_after_percent: float | None
    answers_before: int
    answers_after: int
    detractor_spike: bool


def _incident_json(i: Incident, spike: Any) -> dict[str, Any]:
    def r(value: float | None) -> float | None:
        return round(value, 2) if value is not None else None

    return {
        "id": i.pk,
        "kind": i.kind,
        "title": i.title,
        "description": i.description,
        "started_at": i.started_at,
        "ended_at": i.ended_at,
        "detractors_before_percent": r(spike.before_share),
        "detractors_after_percent": r(spike.after_share),
        "answers_before": spike.before_answers,
        "answers_after": spike.after_answers,
        "detractor_spike": spike.is_spike,
    }


@router.get("/incidents", response=list[IncidentOut], summary="Incidents")
def list_incidents(request: HttpRequest) -> list[dict[str, Any]]:
    """Recorded events, newest first (at most 500), each with the detractor share in the
    14 days before and after its start and whether that rise is a real spike."""
    flt = ResponseFilter.from_params(
        {k: str(v) for k, v in request.GET.items() if k in ("since", "until")}
    )
    qs = Incident.objects.all()
    if flt.since:
        qs = qs.filter(started_at__gte=day_start(flt.since))
    if flt.until:
        qs = qs.filter(started_at__lt=day_start(flt.until + timedelta(days=1)))
    return [_incident_json(i, s) for i, s in with_spikes(qs[:500])]


@router.post("/incidents", response={201: IncidentOut}, summary="Record an incident")
def create_incident(request: HttpRequest, payload: IncidentIn) -> Status[dict[str, Any]]:
    """An incident, outage, release or price change; a start without a zone is read in
    ORG_TIME_ZONE."""
    require_write(request)
    incident = payload.create()
    [(saved, spike)] = with_spikes(Incident.objects.filter(pk=incident.pk))
    return Status(201, _incident_json(saved, spike))


@router.delete("/incidents/{incident_id}", response={204: None}, summary="Delete an incident")
def delete_incident(request: HttpRequest, incident_id: int) -> Status[None]:
    require_write(request)
    get_object_or_404(Incident, pk=incident_id).delete()
    return Status(204, None)


class ThemeRowOut(Schema):
    slug: str
    name: str
    responses: int = Field(description="answers naming it in the period")
    share: float = Field(description="percent of the period's read comments")
    accounts: int
    arr_cents: int = Field(description="ARR of those accounts, each once")
    previous_responses: int = Field(description="in the period of equal length before")
    change: int
    sentiment: float | None = Field(description="mean sentiment score of its answers")


class ThemeSeriesOut(Schema):
    slug: str
    name: str
    counts: list[int]
    shares: list[float] = Field(description="percent of each period's read comments")


class ThemesOut(Schema):
    since: date
    until: date
    read: int = Field(description="comments the worker read in the period")
    themes: list[ThemeRowOut]
    grain: str
    periods: list[date] = Field(description="the trend's periods, by their first day")
    read_per_period: list[int]
    trend: list[ThemeSeriesOut] = Field(description="the `top` most frequent themes")


@router.get("/insights/themes", response=ThemesOut, summary="Themes by count, ARR and trend")
def get_themes(request: HttpRequest, top: int = 5) -> dict[str, Any]:
    """The themes of the answers in [since, until] (default the last 90 days; any answer
    filter applies, e.g. category=detractor) with their share of read comments, accounts,
    ARR, change and sentiment; and, per `grain` over [since, until], the share of comments
    naming each of the `top` most frequent."""
    if not 1 <= top <= 20:
        raise FieldError("top", "must be from 1 to 20", where="query")
    flt, since, until = _filter(request, 90)
    grain = params.grain(request.GET)
    segment = flt.apply_segment(Response.objects.all())
    table = top_themes.theme_table(segment, since, until)
    slugs = [r.figure.slug for r in table.rows[:top]]
    found = top_themes.theme_trend(segment, since, until, grain, slugs)
    return {
        "since": since,
        "until": until,
        "read": table.read,
        "themes": [
            {
                **r.figure.__dict__,
                "share": round(r.share, 2),
                "previous_responses": r.previous_responses,
                "change": r.change,
                "sentiment": r.sentiment,
            }
            for r in table.rows
        ],
        "grain": grain.value,
        "periods": found.starts,
        "read_per_period": found.read,
        "trend": [s.__dict__ for s in found.series],
    }
