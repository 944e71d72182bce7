"""Report pages: incidents beside the trend, the monthly report (page, PDF) and the
calculators. The figures come from `closeloop.insights`; these views read parameters,
call it and render."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from closeloop.core.errors import FieldError
from closeloop.core.periods import Grain, local_date, period_start
from closeloop.insights import calculators, report, report_pdf
from closeloop.insights.models import SPIKE_MIN_ANSWERS, SPIKE_WINDOW, Incident, with_spikes
from closeloop.insights.schemas import IncidentIn
from closeloop.loop.models import FollowUpCase
from closeloop.team.models import User

from .insights import cases_link
from .views import (
    _base,
    form_pk,
    reported,
    responses_link,
    stream,
)


def _writer(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not user.can_write():
        raise PermissionDenied("viewers cannot record incidents")
    return user


def _incident_form(post: Any) -> dict[str, Any]:
    """The posted form as the schema's fields; empty optional fields are left out."""
    data = {k: post.get(k, "").strip() for k in ("kind", "title", "description", "started_at")}
    if post.get("ended_at", "").strip():
        data["ended_at"] = post["ended_at"].strip()
    return data


@login_required
def export_incidents(request: HttpRequest) -> StreamingHttpResponse:
    """Every incident with the detractor share before and after it, as CSV."""
    header = ["id", "kind", "title", "started_at", "ended_at", "answers_before"]
    header += ["detractor_share_before", "answers_after", "detractor_share_after"]
    header += ["detractor_spike", "description"]

    def share(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else ""

    rows = (
        [
            i.pk,
            i.kind,
            i.title,
            i.started_at.isoformat(),
            i.ended_at.isoformat() if i.ended_at else "",
            sp.before_answers,
            share(sp.before_share),
            sp.after_answers,
            share(sp.after_share),
            "yes" if sp.is_spike else "no",
            i.description,
        ]
        for i, sp in with_spikes(Incident.objects.all())
    )
    return stream("incidents.csv", header, rows)


@login_required
def incidents_page(request: HttpRequest) -> HttpResponse:
    """Incidents, outages, releases and price changes, each with the detractor share around it."""
    status = 200
    if request.method == "POST":
        user = _writer(request)
        if request.POST.get("delete"):
            if not user.can_manage():
                raise PermissionDenied("only admins and managers delete incidents")
            Incident.objects.filter(pk=form_pk(request.POST.get("delete"))).delete()
            messages.success(request, "Incident deleted.")
            return redirect("incidents")
        with reported(request) as outcome:
            incident = IncidentIn.model_validate(_incident_form(request.POST)).create(user)
        if not outcome.refused:
            messages.success(request, f"Recorded “{incident.title}”.")
            return redirect("incidents")
        status = 422
    rows = []
    for incident, spike in with_spikes(Incident.objects.all()[:200]):
        start = local_date(incident.started_at)
        after = local_date(incident.started_at + SPIKE_WINDOW)
        link = responses_link({}, since=start, until=after, category="detractor")
        rows.append((incident, spike, link))
    return render(
        request,
        "web/incidents.html",
        _base(
            rows=rows,
            kinds=Incident.Kind.choices,
            form=request.POST if request.method == "POST" else {},
            window=SPIKE_WINDOW.days,
            min_answers=SPIKE_MIN_ANSWERS,
        ),
        status=status,
    )


def _month(request: HttpRequest) -> tuple[date, str | None]:
    value = request.GET.get("month")
    if not value:
        return report.last_complete_month(), None
    try:
        month = date.fromisoformat(f"{value}-01")
    except ValueError:
        return report.last_complete_month(), f"month: {value!r} is not a month like 2026-10"
    if not date(2000, 1, 1) <= month <= date(2999, 12, 1):
        return report.last_complete_month(), "month: must be between 2000-01 and 2999-12"
    return month, None


@login_required
def report_page(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The monthly report; ?format=csv or pdf downloads it. POST toggles the email on the 1st."""
    user: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        user.monthly_report = request.POST.get("monthly_report") == "on"
        user.save(update_fields=["monthly_report"])
        messages.success(
            request,
            "You will get this report by email on the 1st of each month."
            if user.monthly_report
            else "You will no longer get the monthly report by email.",
        )
        return redirect(reverse("report") + "?" + request.GET.urlencode())
    month, error = _month(request)
    fmt = request.GET.get("format", "")
    if fmt and error:
        return HttpResponse(error, status=400, content_type="text/plain")
    built = report.build(month)
    name = f"closeloop-report-{month:%Y-%m}"
    if fmt == "csv":
        return stream(f"{name}.csv", ["section", "item", "value", "detail"], report.rows(built))
    if fmt == "pdf":
        response = HttpResponse(report_pdf.render(built), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
        return response
    if fmt:
        error = "format: must be csv or pdf"
    end = built.last_day
    period = {"since": month.isoformat(), "until": end.isoformat()}
    previous = period_start(month - timedelta(days=1), Grain.MONTH)
    return render(
        request,
        "web/report.html",
        _base(
            r=built,
            error=error,
            month_value=f"{month:%Y-%m}",
            previous_month=f"{previous:%Y-%m}",
            next_month=f"{end + timedelta(days=1):%Y-%m}",
            answers=responses_link({}, **period),
            detractors=responses_link({}, **period, category="detractor"),
            cases=cases_link("cases", month, end, FollowUpCase.Loop.DETRACTOR),
            program_link=reverse("program") + "?" + urlencode(period),
            period=period,
            subscribed=user.monthly_report,
        ),
    )


def _calculate(get: Any, name: str, run: Any) -> tuple[Any, str | None]:
    """Run one calculator when its form was submitted (`?calc=name`); errors name the field."""
    if get.get("calc") != name:
        return None, None
    try:
        return run(), None
    except FieldError as exc:
        return None, f"{exc.field}: {exc.reason}"


@login_required
def calculators_page(request: HttpRequest) -> HttpResponse:
    """NPS from counts, a response rate, and the answers needed to detect a change."""
    g, c = request.GET, calculators
    nps_result, nps_error = _calculate(
        g,
        "nps",
        lambda: c.nps_from_counts(
            c.count("promoters", g.get("promoters")),
            c.count("passives", g.get("passives")),
            c.count("detractors", g.get("detractors")),
        ),
    )
    rate_result, rate_error = _calculate(
        g,
        "rate",
        lambda: c.response_rate(
            c.count("delivered", g.get("delivered")), c.count("answered", g.get("answered"))
        ),
    )
    size_result, size_error = _calculate(
        g,
        "size",
        lambda: c.sample_size(
            c.number("promoter_share", g.get("promoter_share"), 0, 100),
            c.number("detractor_share", g.get("detractor_share"), 0, 100),
            c.number("change", g.get("change"), 0, 200),
            c.number("power", g.get("power") or "0.8", 0, 1),
            c.number("expected_rate", g.get("expected_rate"), 0.1, 100)
            if g.get("expected_rate")
            else None,
        ),
    )
    status = 422 if nps_error or rate_error or size_error else 200
    return render(
        request,
        "web/calculators.html",
        _base(
            g=g,
            nps=nps_result,
            nps_error=nps_error,
            rate=rate_result,
            rate_error=rate_error,
            size=size_result,
            size_error=size_error,
            median=c.B2B_MEDIAN_RESPONSE_RATE,
            powers=c.POWERS,
        ),
        status=status,
    )
