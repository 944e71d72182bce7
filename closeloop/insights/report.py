"""The monthly report: one calendar month (organisation's time zone).

NPS and its change from the month before, NPS by month over the year with its 95%
band, the top three detractor themes by count and by ARR (from answer tags) with
whether each moved, who owns each and what is on its roadmap, the follow-up program's
metrics and its return, the actions owners committed to, and revenue at risk. The
page, the CSV, the PDF (`report_pdf`) and the email on the 1st all read one `MonthlyReport`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse

from closeloop.core.nps import Compared, NpsSummary
from closeloop.core.periods import Grain, day_start, next_period, period_label, period_start, today
from closeloop.delivery.models import Delivery
from closeloop.loop.models import RoadmapItem, Task
from closeloop.surveys.models import Response
from closeloop.team.models import User
from closeloop.themes.models import Theme

from . import effects, health, program, risk, top_themes
from .metrics import class_counts, summary_from
from .models import MonthlyReportRun
from .trends import TrendPoint, trend

TOP = 3


@dataclass(frozen=True)
class ThemeMove:
    """A top theme this month, beside its count the month before."""

    figure: top_themes.ThemeFigure
    previous_responses: int

    @property
    def change(self) -> int:
        return self.figure.responses - self.previous_responses


@dataclass(frozen=True)
class Plan:
    """A top theme's owner and its roadmap items that are not dropped."""

    owner: str
    items: list[dict[str, Any]]

    def lines(self) -> list[tuple[str, str, bool]]:
        """Each item as (title, 'in progress, by 12 Dec 2026' or 'shipped 3 Oct 2026',
        overdue)."""
        found = []
        for i in self.items:
            if i["status"] == "shipped":
                when = f"shipped {i['shipped_at']:%-d %b %Y}" if i["shipped_at"] else "shipped"
            else:
                when = i["status"].replace("_", " ")
                if i["target_date"]:
                    when += f", by {i['target_date']:%-d %b %Y}"
            found.append((i["title"], when, bool(i["overdue"])))
        return found

    def describe(self) -> str:
        """The items in a line: 'X (in progress, by 12 Dec 2026); Y (shipped 3 Oct 2026)'."""
        parts = [
            f"{title} ({when}{' — overdue' if late else ''})" for title, when, late in self.lines()
        ]
        return "; ".join(parts) or "nothing planned"


@dataclass(frozen=True)
class Commitment:
    title: str
    owner: str
    case_id: int
    customer: str
    due_at: datetime
    done_at: datetime | None


@dataclass(frozen=True)
class MonthlyReport(Compared):
    month: date
    current: NpsSummary
    previous: NpsSummary
    top_by_count: list[ThemeMove]
    top_by_arr: list[ThemeMove]
    program: program.ProgramFigures
    commitments: list[Commitment]
    at_risk: risk.RiskTotal
    months: list[TrendPoint]
    plans: dict[str, Plan]
    follow_up_return: effects.FollowUpReturn
    health: list[tuple[str, int, int]]  # (band, accounts, ARR in cents), now

    def plan(self, slug: str) -> Plan:
        return self.plans.get(slug, Plan("nobody", []))

    @property
    def label(self) -> str:
        return period_label(self.month, Grain.MONTH)

    @property
    def last_day(self) -> date:
        return next_period(self.month, Grain.MONTH) - timedelta(days=1)


def last_complete_month() -> date:
    """The first day of the month before this one (organisation's calendar)."""
    return period_start(period_start(today(), Grain.MONTH) - timedelta(days=1), Grain.MONTH)


def _moves(
    now: list[top_themes.ThemeFigure], before: list[top_themes.ThemeFigure]
) -> list[ThemeMove]:
    counts = {f.slug: f.responses for f in before}
    return [ThemeMove(f, counts.get(f.slug, 0)) for f in now]


def build(month: date) -> MonthlyReport:
    """Every figure of the report for the month starting on `month` (a first of the month)."""
    start, end = month, next_period(month, Grain.MONTH)
    before = period_start(start - timedelta(days=1), Grain.MONTH)
    row = Response.objects.filter(
        created_at__gte=day_start(before), created_at__lt=day_start(end)
    ).aggregate(
        **class_counts("cur_", Q(created_at__gte=day_start(start))),
        **class_counts("prev_", Q(created_at__lt=day_start(start))),
    )
    detractors = Response.objects.filter(score__lte=6)
    themes = top_themes.theme_figures(
        detractors.filter(created_at__gte=day_start(start), created_at__lt=day_start(end))
    )
    themes_before = top_themes.theme_figures(
        detractors.filter(created_at__gte=day_start(before), created_at__lt=day_start(start))
    )
    cases = program.cases_opened(start, end - timedelta(days=1))
    figures = program.program_figures(cases).get(None, program.ProgramFigures())
    promised = (
        Task.objects.filter(
            kind=Task.Kind.COMMITMENT,
            created_at__gte=day_start(start),
            created_at__lt=day_start(end),
        )
        .select_related("owner", "case__person")
        .order_by("due_at", "id")[:200]
    )
    top_by_count = _moves(top_themes.top_by_count(themes, TOP), themes_before)
    top_by_arr = _moves(top_themes.top_by_arr(themes, TOP), themes_before)
    year = period_start(start - timedelta(days=335), Grain.MONTH)
    return MonthlyReport(
        month=start,
        months=trend(Response.objects.all(), year, end - timedelta(days=1), Grain.MONTH),
        plans=_plans({m.figure.slug for m in top_by_count + top_by_arr}),
        follow_up_return=effects.follow_up_return(
            program.cases_opened(year, end - timedelta(days=1)), now=day_start(end)
        ),
        current=summary_from(row, "cur_"),
        previous=summary_from(row, "prev_"),
        top_by_count=top_by_count,
        top_by_arr=top_by_arr,
        program=figures,
        commitments=[
            Commitment(
                title=t.title,
                owner=t.owner.display_name if t.owner else "unassigned",
                case_id=t.case_id,
                customer=t.case.person.name or t.case.person.email or "",
                due_at=t.due_at,
                done_at=t.done_at,
            )
            for t in promised
        ],
        at_risk=risk.total_at_risk(),
        health=health.by_band(health.scores()),
    )


def _plans(slugs: set[str]) -> dict[str, Plan]:
    """Each theme's owner and live roadmap items, for the top themes."""
    plans = {}
    for theme in Theme.objects.filter(slug__in=slugs).select_related("owner"):
        items = [
            i.as_json()
            | {
                "target_date": i.target_date,
                "shipped_at": i.shipped_at,
                "status_label": i.get_status_display(),
            }
            for i in RoadmapItem.objects.filter(theme=theme).exclude(status="dropped")
        ]
        owner = theme.owner.display_name if theme.owner else "nobody"
        plans[theme.slug] = Plan(owner, items)
    return plans


def _pct(value: float | None) -> str:
    return f"{value:.1f}%" if value is not None else "—"


def _nps(s: NpsSummary) -> str:
    if not s.responses:
        return "—"
    low, high = s.interval
    return f"{s.nps:.0f} (95%: {low:.0f} to {high:.0f}, n = {s.responses})"


def _change(r: MonthlyReport) -> str:
    if r.change is None:
        return "—"
    note = "significant" if r.significant else "within noise"
    return f"{r.change:+.1f} ({note})"


def rows(r: MonthlyReport) -> list[list[Any]]:
    """The report as (section, item, value, detail) rows, for the CSV and the email."""
    p = r.program
    out: list[list[Any]] = [
        ["NPS", r.label, _nps(r.current), ""],
        ["NPS", "previous month", _nps(r.previous), ""],
        ["NPS", "change", _change(r), ""],
    ]
    for point in r.months:
        out.append(["NPS by month", point.label, _nps(point.summary), ""])
    for name, moves in (("by count", r.top_by_count), ("by ARR", r.top_by_arr)):
        for rank, m in enumerate(moves, 1):
            plan = r.plan(m.figure.slug)
            out.append(
                [
                    f"Top detractor themes {name}",
                    f"{rank}. {m.figure.name}",
                    f"{m.figure.responses} answers, {m.figure.accounts} accounts, "
                    f"USD {m.figure.arr_cents / 100:,.0f} ARR",
                    f"{m.change:+d} answers vs the month before; owner {plan.owner}; "
                    f"roadmap: {plan.describe()}",
                ]
            )
    out += [
        ["Follow-up program", "cases opened", p.cases, ""],
        ["Follow-up program", "automated within 48h", _pct(p.automated_rate), "target 100%"],
        ["Follow-up program", "personal within 48h", _pct(p.personal_rate), "target 80%"],
        ["Follow-up program", "customers responding", _pct(p.response_rate), "warn under 20%"],
        ["Follow-up program", "resolved", p.resolved, f"can't fix {p.cant_fix}, open {p.open}"],
        ["Follow-up program", "moved up on the next survey", _pct(p.score_change_rate), ""],
    ]
    back = r.follow_up_return
    for side, name in ((back.followed, "followed up"), (back.not_followed, "not followed up")):
        out.append(
            [
                "Follow-up return",
                f"ARR kept 90 days on, {name}",
                _pct(side.kept_rate),
                f"USD {side.live_arr_cents / 100:,.0f} of {side.arr_cents / 100:,.0f}; "
                f"{side.live_accounts} of {side.accounts} accounts",
            ]
        )
    if back.difference is not None:
        worth = f"worth USD {(back.worth_cents or 0) / 100:,.0f} at the followed-up ARR"
        ci = back.difference_interval
        if ci is not None:
            worth += f"; 95% interval {ci[0]:+.1f} to {ci[1]:+.1f} points"
        out.append(["Follow-up return", "difference", f"{back.difference:+.1f} points", worth])
    for c in r.commitments:
        done = f"done {c.done_at:%Y-%m-%d}" if c.done_at else f"due {c.due_at:%Y-%m-%d}"
        out.append(["Commitments", c.owner, c.title, f"{c.customer} (case {c.case_id}), {done}"])
    out.append(
        [
            "Revenue at risk",
            "now",
            f"USD {r.at_risk.arr_cents / 100:,.0f}",
            f"{r.at_risk.accounts} accounts",
        ]
    )
    for band, accounts, arr in r.health:
        out.append(["Account health", band, f"{accounts} accounts", f"USD {arr / 100:,.0f} ARR"])
    return out


# The report for a month goes out on the 1st; a worker that was down then catches up
# for this many days, after which the month is left unsent rather than sent stale.
CATCH_UP_DAYS = 7


def email_text(r: MonthlyReport) -> tuple[str, str]:
    """Subject and plain-text body of the monthly email, with links to the page and PDF."""
    subject = f"closeloop monthly report, {r.label}: NPS {_nps(r.current).split(' ')[0]}"
    if r.change is not None:
        subject += f" ({r.change:+.1f}, {'significant' if r.significant else 'within noise'})"
    lines, section = [], None
    for sec, item, value, detail in rows(r):
        if sec != section:
            lines += ["", sec.upper()]
            section = sec
        lines.append(f"- {item}: {value}" + (f" ({detail})" if detail else ""))
    url = f"{settings.SITE_URL}{reverse('report')}?month={r.month:%Y-%m}"
    lines += ["", f"The report: {url}", f"PDF: {url}&format=pdf"]
    return subject, "\n".join(lines).strip() + "\n"


def handle_monthly_report() -> bool:
    """Send last month's report to every user who chose it, once, from the 1st.

    The unique MonthlyReportRun row for the month is the claim: of several workers,
    the one whose insert succeeds sends; the others find the row and do nothing.
    """
    if today().day > CATCH_UP_DAYS:
        return False
    month = last_complete_month()
    if MonthlyReportRun.objects.filter(month=month).exists():
        return False
    recipients = list(
        User.objects.filter(monthly_report=True, is_active=True).exclude(email="").order_by("pk")
    )
    try:
        with transaction.atomic():
            MonthlyReportRun.objects.create(month=month, recipients=len(recipients))
            if recipients:
                subject, body = email_text(build(month))
                Delivery.objects.bulk_create(
                    Delivery(
                        kind=Delivery.Kind.EMAIL,
                        purpose=Delivery.Purpose.REPORT,
                        to=user.email,
                        from_email=settings.DEFAULT_FROM_EMAIL,
                        subject=subject,
                        body=body,
                    )
                    for user in recipients
                )
    except IntegrityError:
        return False  # another worker claimed this month first
    return True
