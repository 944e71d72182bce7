"""The monthly report: one calendar month (organisation's time zone) on one page.

NPS and its change from the month before, the top three detractor themes by
count and by ARR (from answer tags) and whether each moved, the follow-up
program's metrics, the actions owners committed to, and revenue at risk. The
page, the CSV, the PDF and the email on the 1st all read one `MonthlyReport`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse

from closeloop.core.nps import Compared, NpsSummary
from closeloop.core.periods import Grain, day_start, next_period, period_label, period_start, today
from closeloop.delivery.models import Delivery
from closeloop.loop.models import Task
from closeloop.surveys.models import Response
from closeloop.team.models import User

from . import program, risk, top_themes
from .metrics import class_counts, summary_from
from .models import MonthlyReportRun

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
    return MonthlyReport(
        month=start,
        current=summary_from(row, "cur_"),
        previous=summary_from(row, "prev_"),
        top_by_count=_moves(top_themes.top_by_count(themes, TOP), themes_before),
        top_by_arr=_moves(top_themes.top_by_arr(themes, TOP), themes_before),
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
    )


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
    """The report as (section, item, value, detail) rows: the CSV and the PDF share them."""
    p = r.program
    out: list[list[Any]] = [
        ["NPS", r.label, _nps(r.current), ""],
        ["NPS", "previous month", _nps(r.previous), ""],
        ["NPS", "change", _change(r), ""],
    ]
    for name, moves in (("by count", r.top_by_count), ("by ARR", r.top_by_arr)):
        for rank, m in enumerate(moves, 1):
            out.append(
                [
                    f"Top detractor themes {name}",
                    f"{rank}. {m.figure.name}",
                    f"{m.figure.responses} answers, {m.figure.accounts} accounts, "
                    f"USD {m.figure.arr_cents / 100:,.0f} ARR",
                    f"{m.change:+d} answers vs the month before",
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
    return out


def pdf(r: MonthlyReport) -> bytes:
    """The report as an A4 PDF (Bitstream Vera, which ships with ReportLab, for accents)."""
    from pathlib import Path

    import reportlab
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    fonts = Path(reportlab.__file__).parent / "fonts"
    if "Vera" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("Vera", str(fonts / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont("VeraBd", str(fonts / "VeraBd.ttf")))
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = "VeraBd" if style.name.startswith(("Title", "Heading")) else "Vera"
    cell = styles["BodyText"].clone("cell", fontSize=8.5, leading=10.5)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=f"closeloop monthly report, {r.label}",
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
    )
    story: list[Any] = [
        Paragraph(f"Monthly report — {r.label}", styles["Title"]),
        Paragraph(
            f"{r.month:%-d %b %Y} to {r.last_day:%-d %b %Y}. NPS {_nps(r.current)}; "
            f"change {_change(r)}.",
            styles["BodyText"],
        ),
        Spacer(1, 4 * mm),
    ]
    section = None
    table_rows: list[list[Any]] = []
    for sec, item, value, detail in rows(r):
        if sec != section:
            table_rows.append([Paragraph(f"<b>{escape(sec)}</b>", cell), "", "", ""])
            section = sec
        table_rows.append([Paragraph(escape(str(x)), cell) for x in ("", item, value, detail)])
    table = Table(table_rows, colWidths=[6 * mm, 45 * mm, 70 * mm, 57 * mm], repeatRows=0)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#e5e7eb")),
                ("FONTNAME", (0, 0), (-1, -1), "Vera"),
            ]
        )
    )
    story.append(table)
    doc.build(story)
    return out.getvalue()


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
