"""Insight pages: segments, program metrics, transitions, revenue at risk and themes. The
figures come from `closeloop.insights`; these views read parameters, call it and render
(or stream CSV). Incidents, the monthly report and the calculators are `reports`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from closeloop.core.errors import FieldError
from closeloop.core.nps import Category
from closeloop.core.periods import Grain, period_label, period_starts
from closeloop.insights import (
    backtest,
    effects,
    health,
    params,
    program,
    risk,
    top_themes,
    transitions,
)
from closeloop.insights import segments as seg
from closeloop.insights.models import HealthBacktest
from closeloop.loop.models import FollowUpCase, RoadmapItem
from closeloop.surveys.models import Response
from closeloop.team.models import Team, User
from closeloop.themes.models import Theme

from .forms import ResponseFilterForm
from .views import (
    DEFAULT_DAYS,
    _base,
    _filters,
    _grain,
    other_filters,
    reported,
    responses_link,
    segment_params,
    stream,
    trend_start,
)


def _segments(request: HttpRequest) -> tuple[seg.SegmentTable, str | None]:
    _, flt, error = _filters(request)
    since, until = flt.period(DEFAULT_DAYS)
    by = request.GET.get("by") or "tier"
    try:
        seg.check_dimension(by)
    except FieldError as exc:
        error, by = error or f"{exc.field}: {exc.reason}", "tier"
    table = seg.segment_table(
        flt.apply_segment(Response.objects.all()), by, since, until, request.GET.get("sort", "")
    )
    return table, error


@login_required
def segments(request: HttpRequest) -> HttpResponse:
    """NPS per value of a dimension, moving-against-the-trend first, small ones flagged."""
    table, error = _segments(request)
    params = segment_params(request)
    period = {"since": table.since.isoformat(), "until": table.until.isoformat()}
    rows = [
        (row, responses_link(params, **period, **seg.segment_query(table.dimension, row.value)))
        for row in table.rows
    ]
    chart = [
        {
            "label": row.value,
            "nps": round(row.current.nps, 1),
            "low": round(row.current.interval[0], 1),
            "high": round(row.current.interval[1], 1),
            "n": row.current.responses,
            "small": row.small,
            "href": href,
        }
        for row, href in rows
        if row.current.responses  # a value seen only in the period before has nothing to plot
    ]
    form = ResponseFilterForm({**request.GET.dict(), **period})
    return render(
        request,
        "web/segments.html",
        _base(
            form=form,
            error=error,
            table=table,
            rows=rows,
            chart={"segments": chart, "overall": round(table.overall.current.nps, 1)},
            dimensions=seg.DIMENSIONS,
            properties=seg.property_names(Response.objects.all()),
            by=table.dimension,
            sort=request.GET.get("sort", ""),
            min_n=seg.MIN_SEGMENT_N,
            overall_link=responses_link(params, **period),
            query=urlencode({k: v for k, v in request.GET.items() if k != "sort"}),
            full_query=request.GET.urlencode(),
            also=other_filters(request, {"survey", "tier"}),
        ),
    )


@login_required
def export_segments(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The segments table as CSV, in the order the page shows it."""
    table, error = _segments(request)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain")
    header = ["dimension", "value", "responses", "promoters", "passives", "detractors", "nps"]
    header += ["ci_low", "ci_high", "previous_responses", "previous_nps", "change"]
    header += ["change_significant", "against_overall_trend", "small_sample"]
    rows = (
        [
            table.dimension,
            r.value,
            r.current.responses,
            r.current.promoters,
            r.current.passives,
            r.current.detractors,
            round(r.current.nps, 2),
            round(r.current.interval[0], 2),
            round(r.current.interval[1], 2),
            r.previous.responses,
            round(r.previous.nps, 2),
            round(r.change, 2) if r.change is not None else "",
            "yes" if r.significant else "no",
            "yes" if r.against_trend else "no",
            "yes" if r.small else "no",
        ]
        for r in table.rows
    )
    return stream(f"nps-by-{table.dimension.replace(':', '-')}.csv", header, rows)


def _program_params(request: HttpRequest) -> tuple[date, date, str, str, Grain, list[str]]:
    """Period, loop, grouping and grain of the program page; bad values are named and reset."""
    errors = []
    _, flt, error = _filters(request)
    if error:
        errors.append(error)
    since, until = flt.period(DEFAULT_DAYS)
    loop = params.or_default(errors, lambda: params.loop(request.GET), params.LOOPS[0])
    by = params.or_default(
        errors, lambda: params.choice(request.GET, "by", "owner", list(program.GROUPS)), "owner"
    )
    grain, grain_error = _grain(request)
    if grain_error:
        errors.append(grain_error)
    return since, until, loop, by, grain, errors


def cases_link(figure: str, since: date, until: date, loop: str, **group: Any) -> str:
    """The cases behind a program figure, on the cases page."""
    query = {"figure": figure, "since": since, "until": until, "loop": loop, **group}
    if not figure:
        del query["figure"]
    return reverse("inbox") + "?" + urlencode({k: str(v) for k, v in query.items()})


def _group_names(by: str, keys: list[Any]) -> dict[Any, str]:
    if by == "team":
        names = dict(Team.objects.filter(pk__in=[k for k in keys if k]).values_list("pk", "name"))
        return {k: names.get(k, "No team") if k else "No team" for k in keys}
    users = {u.pk: u.display_name for u in User.objects.filter(pk__in=[k for k in keys if k])}
    return {k: users.get(k, "Unassigned") if k else "Unassigned" for k in keys}


def _program(request: HttpRequest) -> dict[str, Any]:
    since, until, loop, by, grain, errors = _program_params(request)
    cases = program.cases_opened(since, until, loop)
    overall, groups = program.program_breakdown(cases, by)
    names = _group_names(by, list(groups))
    rows = sorted(
        ((names[key], key, figures) for key, figures in groups.items()),
        key=lambda row: (-row[2].cases, row[0]),
    )
    first = trend_start(until, grain)
    over_time = program.program_figures(program.cases_opened(first, until, loop), grain)
    periods = period_starts(first, until, grain)
    return {
        "since": since,
        "until": until,
        "loop": loop,
        "by": by,
        "grain": grain,
        "errors": errors,
        "overall": overall,
        "rows": rows,
        "periods": [(start, over_time.get(start, program.ProgramFigures())) for start in periods],
    }


def _rate(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


@login_required
def program_page(request: HttpRequest) -> HttpResponse:
    """Is the follow-up program working? Each metric against its target, over time and per owner."""
    ctx = _program(request)
    since, until, loop, by = ctx["since"], ctx["until"], ctx["loop"], ctx["by"]
    link = {name: cases_link(name, since, until, loop) for name in program.FIGURE_LABELS}
    group_param = "owner" if by == "owner" else "team"
    rows = [
        (
            name,
            figures,
            {
                figure: cases_link(figure, since, until, loop, **{group_param: key or "none"})
                for figure in program.FIGURE_LABELS
            },
        )
        for name, key, figures in ctx["rows"]
    ]
    chart = {
        "labels": [period_label(start, ctx["grain"]) for start, _ in ctx["periods"]],
        "automated": [_rate(f.automated_rate) for _, f in ctx["periods"]],
        "personal": [_rate(f.personal_rate) for _, f in ctx["periods"]],
        "response": [_rate(f.response_rate) for _, f in ctx["periods"]],
        "resolved": [f.counts.get("resolved", 0) for _, f in ctx["periods"]],
        "cant_fix": [f.counts.get("cant_fix", 0) for _, f in ctx["periods"]],
        "no_response": [f.counts.get("no_response", 0) for _, f in ctx["periods"]],
        "open": [f.counts.get("open", 0) for _, f in ctx["periods"]],
        "targets": {
            "automated": program.TARGET_AUTOMATED,
            "personal": program.TARGET_PERSONAL,
            "response": program.WARN_RESPONSE_RATE,
        },
    }
    form = ResponseFilterForm({"since": since, "until": until})
    effect_by = params.or_default(
        ctx["errors"],
        lambda: params.choice(request.GET, "effect_by", "action", list(effects.DIMENSIONS)),
        "action",
    )
    cases = program.cases_opened(since, until, loop)
    effect_rows = [
        (
            effects.label(effect_by, e.key),
            e,
            cases_link("", since, until, loop, effect_by=effect_by, effect=e.key),
        )
        for e in effects.effects(cases, effect_by)
    ]
    return render(
        request,
        "web/program.html",
        _base(
            **ctx,
            form=form,
            link=link,
            table=rows,
            effect_by=effect_by,
            effect_dimensions=effects.DIMENSIONS,
            effect_by_name=effects.DIMENSIONS[effect_by],
            effect_rows=effect_rows,
            effect_min_n=effects.MIN_N,
            follow_up_return=effects.follow_up_return(cases),
            chart=chart,
            grains=list(Grain),
            targets=chart["targets"],
            loops=FollowUpCase.Loop.values,
            full_query=request.GET.urlencode(),
        ),
    )


def _hours(value: timedelta | None) -> str:
    return f"{value.total_seconds() / 3600:.1f}" if value is not None else ""


def _pct_cell(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else ""


PROGRAM_HEADER = [
    "cases",
    "automated_due",
    "automated_met",
    "automated_48h_rate",
    "personal_due",
    "personal_met",
    "personal_48h_rate",
    "followed",
    "replied",
    "response_rate",
    "resolved",
    "cant_fix",
    "no_response",
    "superseded",
    "open",
    "answered_again",
    "moved_up",
    "score_change_rate",
    "followed_accounts",
    "followed_churned",
    "unfollowed_accounts",
    "unfollowed_churned",
    "median_hours_to_first_touch",
    "conversation_offered",
    "conversation_started",
    "conversation_completed",
    "conversation_stopped",
    "median_questions_answered",
    "root_cause_known",
    "conversation_reply_rate",
    "plain_reply_rate",
]


def program_row(f: program.ProgramFigures) -> list[Any]:
    """One CSV row of program figures, in PROGRAM_HEADER's order."""
    rates = {
        "automated_48h_rate": _pct_cell(f.automated_rate),
        "personal_48h_rate": _pct_cell(f.personal_rate),
        "response_rate": _pct_cell(f.response_rate),
        "score_change_rate": _pct_cell(f.score_change_rate),
        "median_hours_to_first_touch": _hours(f.median_first_touch),
        "median_questions_answered": (
            "" if f.median_questions_answered is None else f"{f.median_questions_answered:g}"
        ),
        "conversation_reply_rate": _pct_cell(f.conversation_reply_rate),
        "plain_reply_rate": _pct_cell(f.plain_reply_rate),
    }
    return [rates[h] if h in rates else f.counts.get(h, 0) for h in PROGRAM_HEADER]


@login_required
def export_program(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Program metrics per owner or team, then per period, as CSV."""
    ctx = _program(request)
    if ctx["errors"]:
        return HttpResponse("; ".join(ctx["errors"]), status=400, content_type="text/plain")
    rows = [["all", "all cases", *program_row(ctx["overall"])]]
    rows += [[ctx["by"], name, *program_row(f)] for name, _, f in ctx["rows"]]
    rows += [[str(ctx["grain"]), start.isoformat(), *program_row(f)] for start, f in ctx["periods"]]
    return stream("program-metrics.csv", ["group", "name", *PROGRAM_HEADER], rows)


def _cell(request: HttpRequest, name: str) -> Category | None:
    value = request.GET.get(name)
    if not value:
        return None
    try:
        return Category(value)
    except ValueError:
        raise FieldError(name, "must be detractor, passive or promoter", where="query") from None


def _transitions(
    request: HttpRequest,
) -> tuple[date, date, QuerySet[Response], Category | None, Category | None, str | None]:
    _, flt, error = _filters(request)
    since, until = flt.period(DEFAULT_DAYS)
    try:
        before, after = _cell(request, "before"), _cell(request, "after")
    except FieldError as exc:
        before, after, error = None, None, error or f"{exc.field}: {exc.reason}"
    if (before is None) != (after is None):
        before, after, error = None, None, error or "after: give both before and after"
    return since, until, flt.apply_segment(Response.objects.all()), before, after, error


@login_required
def transitions_page(request: HttpRequest) -> HttpResponse:
    """How people moved between classes from one answer to their next, and who moved."""
    since, until, segment, before, after, error = _transitions(request)
    grid = transitions.matrix(segment, since, until)
    params = segment_params(request)
    base = {**params, "since": since.isoformat(), "until": until.isoformat()}
    rows = [
        (
            b,
            [
                (
                    a,
                    grid.count(b, a),
                    grid.share(b, a),
                    "?" + urlencode({**base, "before": b, "after": a}),
                )
                for a in transitions.CLASSES
            ],
            grid.row_total(b),
        )
        for b in transitions.CLASSES
    ]
    moves = transitions.cell_moves(segment, since, until, before, after) if before and after else []
    form = ResponseFilterForm({**request.GET.dict(), "since": since, "until": until})
    return render(
        request,
        "web/transitions.html",
        _base(
            form=form,
            error=error,
            since=since,
            until=until,
            grid=grid,
            rows=rows,
            classes=transitions.CLASSES,
            before=before,
            after=after,
            moves=moves,
            limit=transitions.CELL_LIMIT,
            full_query=request.GET.urlencode(),
        ),
    )


@login_required
def export_transitions(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The matrix as CSV, or with before= and after= every person behind that cell."""
    since, until, segment, before, after, error = _transitions(request)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain")
    if before and after:
        header = ["response_id", "email", "name", "previous_score", "previous_at", "score"]
        rows: Any = (
            [
                m.response_id,
                m.email,
                m.name,
                m.previous_score,
                m.previous_at.isoformat(),
                m.score,
                m.answered_at.isoformat(),
            ]
            for m in transitions.cell_moves(segment, since, until, before, after, limit=None)
        )
        return stream(f"moved-{before}-to-{after}.csv", [*header, "answered_at"], rows)
    grid = transitions.matrix(segment, since, until)
    rows = (
        [b.value, a.value, grid.count(b, a), round(grid.share(b, a) or 0.0, 2)]
        for b in transitions.CLASSES
        for a in transitions.CLASSES
    )
    return stream("transitions.csv", ["before", "after", "people", "share_of_before"], rows)


RISK_LIST_LIMIT = 200


RISK_SORTS = ("arr", "health")


def _risk_accounts(
    request: HttpRequest,
) -> tuple[list[health.Health], risk.Signal | None, str | None]:
    """The accounts at risk (with ?signal=, ?band= of health), each with its health:
    the largest ARR first, or with ?sort=health the least healthy first."""
    signal, error = None, None
    value = request.GET.get("signal")
    if value:
        try:
            signal = risk.Signal(value)
        except ValueError:
            error = "signal: must be one of " + ", ".join(risk.Signal)
    band, sort = request.GET.get("band", ""), request.GET.get("sort") or "arr"
    if band and band not in health.BAND_NAMES:
        error, band = error or "band: must be one of " + ", ".join(health.BAND_NAMES), ""
    if sort not in RISK_SORTS:
        error, sort = error or "sort: must be one of " + ", ".join(RISK_SORTS), "arr"
    accounts = risk.at_risk()
    if signal is not None:
        accounts = accounts.filter(risk.signal_filter(signal))
    found = [h for h in health.scores(accounts) if not band or h.band == band]
    if sort == "arr":
        found.sort(key=lambda h: (-h.account.arr_cents, h.account.name))
    return found, signal, error


@login_required
def risk_page(request: HttpRequest) -> HttpResponse:
    """ARR of live accounts showing a churn signal (insights.risk.Signal)."""
    accounts, signal, error = _risk_accounts(request)
    figures = risk.revenue_at_risk()
    owners = {u.pk: u.display_name for u in User.objects.all()}
    return render(
        request,
        "web/risk.html",
        _base(
            figures=figures,
            signals=[
                (s, risk.SIGNAL_LABELS[s], risk.SIGNAL_HELP[s], figures.by_signal[s])
                for s in risk.Signal
            ],
            by_owner=[(owners.get(t.key, "No owner"), t) for t in figures.by_owner],
            accounts=accounts[:RISK_LIST_LIMIT],
            shown=len(accounts),
            band=request.GET.get("band", ""),
            sort=request.GET.get("sort") or "arr",
            bands=health.BAND_NAMES,
            limit=RISK_LIST_LIMIT,
            signal=signal,
            signal_label=risk.SIGNAL_LABELS.get(signal) if signal else "",
            labels=risk.SIGNAL_LABELS,
            error=error,
            full_query=request.GET.urlencode(),
        ),
    )


HEALTH_LIST_LIMIT = 300


@login_required
def health_page(request: HttpRequest) -> HttpResponse:
    """Every live account's health score, the least healthy first, with its reasons."""
    band = request.GET.get("band", "")
    error = None
    if band and band not in health.BAND_NAMES:
        error, band = "band: must be one of " + ", ".join(health.BAND_NAMES), ""
    weights, fitted_by = health.in_use()
    found = health.scores(weights=weights)
    shown = [h for h in found if not band or h.band == band]
    return render(
        request,
        "web/health.html",
        _base(
            rows=shown[:HEALTH_LIST_LIMIT],
            shown=len(shown),
            limit=HEALTH_LIST_LIMIT,
            bands=[
                (name, n, arr, health.BAND_RANGES[name]) for name, n, arr in health.by_band(found)
            ],
            band=band,
            weights=sorted(
                ((health.WEIGHT_LABELS[k], v) for k, v in weights.items()),
                key=lambda kv: kv[1],
            ),
            fitted_by=fitted_by,
            error=error,
        ),
    )


@login_required
def health_backtest(request: HttpRequest) -> HttpResponse:
    """The backtest of account health against NPS alone, by month, and the model in use;
    an admin asks the worker for a new run (POST)."""
    user: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        if not user.is_admin():
            raise PermissionDenied("only admins run the backtest")
        backtest.request(user)
        return redirect("health-backtest")
    last = HealthBacktest.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    waiting = HealthBacktest.objects.filter(finished_at__isnull=True).order_by("pk").first()
    return render(
        request,
        "web/health_backtest.html",
        _base(
            last=last,
            result=backtest.from_json(last.result) if last and not last.error else None,
            waiting=waiting,
            weights=[
                (health.WEIGHT_LABELS[k], v, (last.weights or {}).get(k) if last else None)
                for k, v in health.WEIGHTS.items()
            ],
            horizon_days=backtest.HORIZON.days,
            few=backtest.FEW_CHURNS,
            min_churned=backtest.MIN_CHURNED,
            can_run=user.is_admin(),
        ),
    )


RISK_TABLES = ("accounts", "owner", "tier", "theme")


@login_required
def export_risk(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Every account at risk (or those with ?signal=) with its signals, as CSV; with
    ?table=owner, tier or theme, that breakdown instead."""
    accounts, _, error = _risk_accounts(request)
    table = request.GET.get("table") or "accounts"
    if table not in RISK_TABLES:
        error = error or "table: must be one of " + ", ".join(RISK_TABLES)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain")
    if table != "accounts":
        figures = risk.revenue_at_risk()
        if table == "theme":
            themes = (
                [t.slug, t.name, t.responses, t.accounts, f"{t.arr_cents / 100:.2f}"]
                for t in figures.by_theme
            )
            header = ["theme", "name", "answers", "accounts", "arr"]
            return stream("risk-by-theme.csv", header, themes)
        emails = dict(User.objects.values_list("pk", "email"))
        totals = figures.by_owner if table == "owner" else figures.by_tier
        lines = (
            [
                emails.get(t.key, "") if table == "owner" else t.key,
                t.accounts,
                f"{t.arr_cents / 100:.2f}",
            ]
            for t in totals
        )
        return stream(f"risk-by-{table}.csv", [table, "accounts", "arr"], lines)
    header = ["account_id", "external_id", "name", "tier", "owner", "arr", "currency"]
    header += [s.value for s in risk.Signal] + ["health", "band"]
    rows = (
        [
            h.account.pk,
            h.account.external_id or "",
            h.account.name,
            h.account.tier,
            h.account.owner.email if h.account.owner else "",
            f"{h.account.arr_cents / 100:.2f}",
            h.account.currency,
        ]
        + ["yes" if getattr(h.account, s.value) else "no" for s in risk.Signal]
        + [h.score, h.band]
        for h in accounts
    )
    return stream("revenue-at-risk.csv", header, rows)


TREND_THEMES = 5  # the trend chart draws the period's most frequent themes


def _themes(request: HttpRequest) -> tuple[top_themes.ThemeTable, str | None, Any]:
    _, flt, error = _filters(request)
    since, until = flt.period(DEFAULT_DAYS)
    segment = flt.apply_segment(Response.objects.all())
    return top_themes.theme_table(segment, since, until), error, segment


@login_required
def themes(request: HttpRequest) -> HttpResponse:
    """Why customers say what they say: the period's themes by answers and by ARR, beside
    the period before, with their share of comments, sentiment, and trend."""
    table, error, segment = _themes(request)
    grain, grain_error = _grain(request)
    params = segment_params(request)
    period = {"since": table.since.isoformat(), "until": table.until.isoformat()}
    slugs = [r.figure.slug for r in table.rows[:TREND_THEMES]]
    trend = top_themes.theme_trend(
        segment, trend_start(table.until, grain), table.until, grain, slugs
    )
    starts = trend.starts
    ends = [*(s - timedelta(days=1) for s in starts[1:]), table.until]
    chart = {
        "labels": trend.labels(),
        "series": [
            {
                "name": s.name,
                "shares": s.shares,
                "counts": s.counts,
                "hrefs": [
                    responses_link(
                        {**params, "theme": s.slug}, since=a.isoformat(), until=b.isoformat()
                    )
                    for a, b in zip(starts, ends, strict=True)
                ],
            }
            for s in trend.series
        ],
        "read": trend.read,
    }
    rows = [(r, responses_link({**params, "theme": r.figure.slug}, **period)) for r in table.rows]
    user: User = request.user  # type: ignore[assignment]
    plans = {
        t.slug: t
        for t in Theme.objects.filter(retired_at__isnull=True, merged_into__isnull=True)
        .select_related("owner")
        .prefetch_related("roadmap_items")
    }
    return render(
        request,
        "web/themes.html",
        _base(
            plans=plans,
            plannable=[t for t in plans.values() if RoadmapItem.may_plan(user, t)],
            roadmap=RoadmapItem.objects.select_related("theme", "theme__owner", "announcement"),
            statuses=RoadmapItem.Status.choices,
            today=timezone.localdate(),
            form=ResponseFilterForm({**request.GET.dict(), **period}),
            error=error or grain_error,
            table=table,
            rows=rows,
            by_arr=sorted(rows, key=lambda pair: -pair[0].figure.arr_cents)[:3],
            chart=chart,
            grains=[g.value for g in Grain],
            grain=grain.value,
            unclassified=responses_link({**params, "theme": "unclassified"}, **period),
            full_query=request.GET.urlencode(),
        ),
    )


@login_required
@require_POST
def roadmap_add(request: HttpRequest) -> HttpResponse:
    """A roadmap item on a theme, from the themes page (its owner, managers, admins)."""
    user: User = request.user  # type: ignore[assignment]
    post = request.POST
    with reported(request) as outcome:
        theme = Theme.named(post.get("theme", ""))
        if theme is None:
            raise FieldError("theme", "choose a theme")
        if not RoadmapItem.may_plan(user, theme):
            raise PermissionDenied("only the theme's owner, managers and admins plan its fixes")
        item = RoadmapItem.add(
            theme,
            user,
            post.get("title", ""),
            status=post.get("status", "planned"),
            target_date=post.get("target_date", ""),
            details=post.get("details", ""),
        )
    if not outcome.refused:
        messages.success(request, f"Added to {theme.name}: {item.title}.")
    return redirect(reverse("themes") + "#roadmap")


@login_required
@require_POST
def roadmap_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a roadmap item on; shipping it opens the theme's fix-shipped announcement."""
    user: User = request.user  # type: ignore[assignment]
    item = get_object_or_404(RoadmapItem.objects.select_related("theme"), pk=pk)
    if not RoadmapItem.may_plan(user, item.theme):
        raise PermissionDenied("only the theme's owner, managers and admins plan its fixes")
    fields = {k: request.POST[k] for k in ("status", "target_date") if k in request.POST}
    announcement = None
    with reported(request) as outcome:
        announcement = item.change(user, **fields)
    if outcome.refused:
        return redirect(reverse("themes") + "#roadmap")
    if announcement is not None:
        messages.success(
            request,
            f"{item.title} shipped: tell the theme's {announcement.cases.count()} cases.",
        )
        return redirect("announcement", announcement.pk)
    messages.success(request, f"{item.title}: {item.get_status_display().lower()}.")
    return redirect(reverse("themes") + "#roadmap")


@login_required
def export_themes(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The themes table as CSV."""
    table, error, _ = _themes(request)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain")
    header = ["theme", "name", "answers", "share_of_read_comments", "accounts", "arr"]
    header += ["previous_answers", "change", "mean_sentiment"]
    rows = (
        [
            r.figure.slug,
            r.figure.name,
            r.figure.responses,
            f"{r.share:.1f}",
            r.figure.accounts,
            f"{r.figure.arr_cents / 100:.2f}",
            r.previous_responses,
            r.change,
            "" if r.sentiment is None else r.sentiment,
        ]
        for r in table.rows
    )
    return stream("themes.csv", header, rows)
