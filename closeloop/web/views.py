"""Pages for people. Views stay thin: they read input, call domain code, render."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from pydantic import ValidationError

from closeloop.access.models import ApiKey
from closeloop.core.errors import FieldError
from closeloop.core.nps import (
    B2B_SAAS_AVERAGE_NPS,
    HEALTHY_DETRACTOR_SHARE,
    STRUCTURAL_DETRACTOR_SHARE,
)
from closeloop.core.periods import (
    Grain,
    day_start,
    local_date,
    period_start,
    short_label,
    today,
    within,
)
from closeloop.insights import params
from closeloop.insights.filters import ResponseFilter
from closeloop.insights.metrics import compare_periods, score_distribution
from closeloop.insights.models import Incident, Spike, with_spikes
from closeloop.insights.trends import TrendPoint, trend
from closeloop.loop import imports
from closeloop.surveys import csvio
from closeloop.surveys.models import Account, CsvImport, Person, Response, Survey
from closeloop.themes.models import Theme

from .forms import ApiKeyForm, ImportForm, ResponseFilterForm


def _filters(request: HttpRequest) -> tuple[ResponseFilterForm, ResponseFilter, str | None]:
    """The filter form and the segment it describes; a bad value is reported, not raised."""
    form = ResponseFilterForm(request.GET)
    params = {k: str(v) for k, v in request.GET.items() if v}
    try:
        return form, ResponseFilter.from_params(params), None
    except FieldError as exc:
        return form, ResponseFilter(), f"{exc.field}: {exc.reason}"


@dataclass
class Outcome:
    """Whether a change made through `reported` was refused."""

    refused: bool = False


@contextmanager
def reported(request: HttpRequest) -> Iterator[Outcome]:
    """Make a change from a form in one transaction; a refusal (FieldError, a theme
    change's FieldError, or a schema's ValidationError) writes nothing and becomes an
    error message naming the field."""
    outcome = Outcome()
    try:
        with transaction.atomic():
            yield outcome
    except ValidationError as exc:
        outcome.refused = True
        for problem in field_errors(exc):
            messages.error(request, problem)
    except FieldError as exc:
        outcome.refused = True
        messages.error(request, f"{exc.field}: {exc.reason}")


def field_errors(exc: ValidationError) -> list[str]:
    """Each problem as 'field.path: message', the way the API names fields."""
    return [
        ".".join(str(p) for p in e["loc"]) + ": " + e["msg"].removeprefix("Value error, ")
        for e in exc.errors()
    ]


def form_pk(value: str | None) -> int:
    """A row id typed or posted in a form; 0 (which no row has) for anything else."""
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) <= 18 else 0


def _base(**extra: Any) -> dict[str, Any]:
    """What every page shows: the demo banner and the survey list for filters."""
    return {
        "demo": Response.demo_loaded(),
        "surveys": Survey.objects.all(),
        "themes": Theme.objects.filter(merged_into__isnull=True).order_by("retired_at", "name"),
        **extra,
    }


# Parameters of a page itself (period, grouping, sorting), not of the segment its
# figures link to.
PAGE_ONLY = {"since", "until", "by", "sort", "grain", "page", "before", "after"}


# Pages show the last 90 days unless a period is chosen.
DEFAULT_DAYS = 90


def segment_params(request: HttpRequest) -> dict[str, str]:
    """The segment filters of the request, without the page's own parameters."""
    return {k: str(v) for k, v in request.GET.items() if v and k not in PAGE_ONLY}


FILTER_LABELS = {
    "theme": "Theme",
    "sentiment": "Sentiment",
    "category": "Class",
    "band": "Band",
    "score": "Score",
    "q": "Comment contains",
    "account": "Account",
    "tier": "Tier",
    "survey": "Survey",
}


def other_filters(request: HttpRequest, shown: set[str]) -> list[tuple[str, str, str, str]]:
    """The segment filters in the URL that a page's form has no field for (a theme and a
    sentiment from the Themes page, say): (name, label, value, the page's link without
    it), so the page says what narrows its figures and its form keeps them."""
    found = []
    for key, value in segment_params(request).items():
        if key in shown:
            continue
        label = FILTER_LABELS.get(key) or key.removeprefix("property.")
        rest = urlencode([(k, v) for k, v in request.GET.items() if k != key])
        found.append((key, label, value, f"?{rest}"))
    return found


def responses_link(params: dict[str, Any], **more: Any) -> str:
    """The answers page narrowed to `params` and `more`: where a figure's rows are."""
    query = {k: str(v) for k, v in {**params, **more}.items() if v not in (None, "")}
    return reverse("responses") + "?" + urlencode(query)


# How far back the dashboard's trend reaches, per grain.
TREND_SPAN = {Grain.WEEK: 26, Grain.MONTH: 12, Grain.QUARTER: 8}


def _grain(request: HttpRequest) -> tuple[Grain, str | None]:
    """The trend's grain from `?grain=`; a bad value falls back to months and is reported."""
    errors: list[str] = []
    grain = params.or_default(errors, lambda: params.grain(request.GET), Grain.MONTH)
    return grain, errors[0] if errors else None


def trend_chart(points: list[TrendPoint], query: dict[str, str]) -> list[dict[str, Any]]:
    """The trend as the chart draws it, each point with a link to its answers."""
    return [
        {
            "label": short_label(p.start, p.grain),
            "nps": round(p.summary.nps, 1) if p.summary.responses else None,
            "low": round(p.summary.interval[0], 1) if p.summary.responses else None,
            "high": round(p.summary.interval[1], 1) if p.summary.responses else None,
            "n": p.summary.responses,
            "detractors": round(p.detractor_share, 1) if p.summary.responses else None,
            "change": round(p.change, 1) if p.change is not None else None,
            "significant": p.significant,
            "href": responses_link(query, since=p.start.isoformat(), until=p.end.isoformat()),
        }
        for p in points
    ]


def trend_start(until: date, grain: Grain) -> date:
    """The first day of a trend of TREND_SPAN periods ending with the one holding `until`."""
    first = until
    for _ in range(TREND_SPAN[grain] - 1):
        first = period_start(first, grain) - timedelta(days=1)
    return period_start(first, grain)


def _trend(segment: QuerySet[Response], until: date, grain: Grain) -> list[TrendPoint]:
    """The dashboard's trend: TREND_SPAN periods ending with the one holding `until`."""
    return trend(segment, trend_start(until, grain), until, grain)


def _events(points: list[TrendPoint], grain: Grain) -> list[tuple[int, Incident, Spike]]:
    """The incidents inside the trend's periods, each with its period's index and spike test."""
    if not points:
        return []
    starts = [p.start for p in points]
    inside = Incident.objects.filter(
        started_at__gte=day_start(starts[0]),
        started_at__lt=day_start(points[-1].end + timedelta(days=1)),
    ).order_by("started_at")[:100]
    return [
        (starts.index(period_start(local_date(i.started_at), grain)), i, spike)
        for i, spike in with_spikes(inside)
    ]


@login_required
def export_trend(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The dashboard's trend table as CSV."""
    _, flt, error = _filters(request)
    grain, grain_error = _grain(request)
    if error or grain_error:
        return HttpResponse(error or grain_error, status=400, content_type="text/plain")
    points = _trend(flt.apply_segment(Response.objects.all()), flt.until or today(), grain)
    header = ["period", "start", "end", "responses", "promoters", "passives", "detractors"]
    header += ["nps", "ci_low", "ci_high", "change", "change_significant", "detractor_share"]
    rows = (
        [
            p.label,
            p.start,
            p.end,
            p.summary.responses,
            p.summary.promoters,
            p.summary.passives,
            p.summary.detractors,
            round(p.summary.nps, 2) if p.summary.responses else "",
            round(p.summary.interval[0], 2) if p.summary.responses else "",
            round(p.summary.interval[1], 2) if p.summary.responses else "",
            round(p.change, 2) if p.change is not None else "",
            "yes" if p.significant else "no",
            round(p.detractor_share, 2) if p.summary.responses else "",
        ]
        for p in points
    )
    return stream(f"nps-by-{grain}.csv", header, rows)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """NPS for a period with its interval and change, the 0–10 distribution and the trend."""
    form, flt, error = _filters(request)
    grain, grain_error = _grain(request)
    since, until = flt.period(DEFAULT_DAYS)
    form = ResponseFilterForm({**request.GET.dict(), "since": since, "until": until})
    segment = flt.apply_segment(Response.objects.all())
    cmp = compare_periods(segment, since, until)
    points = _trend(segment, until, grain)
    period = segment.filter(within(since, until))
    segment_query = segment_params(request)
    trend_rows = trend_chart(points, segment_query)
    events = _events(points, grain)
    chart: dict[str, Any] = {
        "incidents": [
            {
                "index": index,
                "title": i.title,
                "kind": i.get_kind_display(),
                "spike": spike.is_spike,
            }
            for index, i, spike in events
        ],
        "distribution": score_distribution(period),
        "trend": trend_rows,
        "benchmark": B2B_SAAS_AVERAGE_NPS,
        "structural": STRUCTURAL_DETRACTOR_SHARE,
        "healthy": HEALTHY_DETRACTOR_SHARE,
    }
    return render(
        request,
        "web/dashboard.html",
        _base(
            form=form,
            error=error or grain_error,
            cmp=cmp,
            since=since,
            until=until,
            chart=chart,
            grain=grain,
            grains=list(Grain),
            table=list(zip(points, trend_rows, strict=True)),
            events=events,
            current=cmp.current,
            previous=cmp.previous,
            detractor_share=cmp.current.percent(cmp.current.detractors),
            structural=STRUCTURAL_DETRACTOR_SHARE,
            benchmark=B2B_SAAS_AVERAGE_NPS,
            days=(until - since).days + 1,
            query=request.GET.urlencode(),
            period_query=urlencode({**segment_query, "since": since, "until": until}),
        ),
    )


@login_required
def responses(request: HttpRequest) -> HttpResponse:
    """Answers, newest first, filtered and searchable; htmx swaps just the table."""
    form, flt, error = _filters(request)
    qs = flt.apply(
        Response.objects.select_related("person", "account", "survey").prefetch_related(
            "theme_tags__theme"
        )
    )
    page = Paginator(qs.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    template = (
        "web/_responses_table.html" if request.headers.get("HX-Request") else ("web/responses.html")
    )
    return render(
        request,
        template,
        _base(
            form=form,
            error=error,
            page=page,
            query=params.urlencode(),
        ),
    )


def stream(filename: str, header: list[str], rows: Any) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csvio.csv_lines(header, rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def export_responses(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered answers as CSV, formulas neutralised."""
    _, flt, error = _filters(request)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain")
    qs = flt.apply(
        Response.objects.select_related("person", "account", "survey").prefetch_related(
            "theme_tags__theme"
        )
    )
    return stream(
        "responses.csv",
        csvio.RESPONSE_EXPORT_HEADER,
        csvio.response_rows(qs.order_by("-created_at", "-id").iterator(2000)),
    )


@login_required
def export_people(request: HttpRequest) -> StreamingHttpResponse:
    """Everyone as CSV."""
    qs = Person.objects.select_related("account").order_by("pk").iterator(2000)
    return stream("people.csv", csvio.PEOPLE_EXPORT_HEADER, csvio.people_rows(qs))


@login_required
def export_accounts(request: HttpRequest) -> StreamingHttpResponse:
    """Every account as CSV."""
    qs = Account.objects.select_related("owner", "executive_sponsor").order_by("pk").iterator(2000)
    return stream("accounts.csv", csvio.ACCOUNT_EXPORT_HEADER, csvio.account_rows(qs))


@login_required
def import_csv(request: HttpRequest) -> HttpResponse:
    """Upload a CSV: the worker checks every row, then imports; the next page follows it."""
    if not request.user.can_write():  # type: ignore[union-attr]
        raise PermissionDenied("Viewers cannot import data.")
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            job = imports.queue(
                form.cleaned_data["file"],
                form.cleaned_data["kind"],
                valid_only=form.cleaned_data["valid_only"],
                dry_run=form.cleaned_data["dry_run"],
                user=request.user,
            )
            return redirect("import-status", pk=job.pk)
    else:
        form = ImportForm()
    recent = CsvImport.objects.order_by("-created_at")[:10]
    return render(request, "web/import.html", _base(form=form, recent=recent))


@login_required
def import_status(request: HttpRequest, pk: int) -> HttpResponse:
    """One import: its progress while the worker runs it, then its report."""
    if not request.user.can_write():  # type: ignore[union-attr]
        raise PermissionDenied("Viewers cannot import data.")
    job = get_object_or_404(CsvImport, pk=pk)
    report = imports.report_of(job)
    return render(
        request,
        "web/import.html",
        _base(
            form=ImportForm(),
            job=job,
            report=report,
            file_error=(job.report or {}).get("file_error"),
            problems=report.problems[:500] if report else [],
            recent=CsvImport.objects.order_by("-created_at")[:10],
        ),
    )


def health(request: HttpRequest) -> HttpResponse:
    """For load balancers and monitors: 200 when the database answers, 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return HttpResponse("database unavailable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


@never_cache  # the page that shows a new secret must not linger in a cache
@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    """Admins issue keys (the secret is shown once, on this response only) and revoke them."""
    if not request.user.is_admin():  # type: ignore[union-attr]
        raise PermissionDenied("Only admins manage API keys.")
    new_key = None
    form = ApiKeyForm()
    if request.method == "POST" and "revoke" in request.POST:
        pk = form_pk(request.POST["revoke"])
        if not pk:
            return HttpResponse("revoke: not a key id", status=400, content_type="text/plain")
        key = ApiKey.objects.filter(pk=pk, revoked_at__isnull=True).first()
        if key is not None:
            key.revoke()
        return redirect("api-keys")
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            scope = form.cleaned_data["scope"]
            _, new_key = ApiKey.issue(
                form.cleaned_data["name"], read_only=scope == "read", admin=scope == "admin"
            )
            form = ApiKeyForm()
    keys = ApiKey.objects.order_by("revoked_at", "-created_at")
    return render(
        request,
        "web/api_keys.html",
        _base(
            form=form,
            keys=keys,
            new_key=new_key,
        ),
    )
