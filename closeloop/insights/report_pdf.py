"""The monthly report as an A4 PDF (`render`): one heading per section, the
headline figures in a row, NPS by month drawn with its 95% band, the top themes with
their owners and roadmap items, the program's figures and its return, commitments.

Fonts are Bitstream Vera, which ships with ReportLab, so accented names print.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, PolyLine, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from . import health

if TYPE_CHECKING:
    from .report import MonthlyReport, ThemeMove

INK = colors.HexColor("#111827")
MUTED = colors.HexColor("#6b7280")
LINE = colors.HexColor("#e5e7eb")
PANEL = colors.HexColor("#f3f4f6")
BLUE = colors.HexColor("#2563eb")
BAND = colors.HexColor("#dbeafe")
RED = colors.HexColor("#b91c1c")
GREEN = colors.HexColor("#15803d")
MARGIN = 16 * mm


def _fonts() -> None:
    fonts = Path(reportlab.__file__).parent / "fonts"
    if "Vera" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("Vera", str(fonts / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont("VeraBd", str(fonts / "VeraBd.ttf")))
        pdfmetrics.registerFontFamily("Vera", normal="Vera", bold="VeraBd")


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName="Vera", fontSize=9.5, leading=13, textColor=INK)
    return {
        "title": ParagraphStyle("title", base, fontName="VeraBd", fontSize=20, leading=24),
        "subtitle": ParagraphStyle("subtitle", base, textColor=MUTED, spaceAfter=8),
        "h2": ParagraphStyle(
            "h2",
            base,
            fontName="VeraBd",
            fontSize=12.5,
            leading=16,
            spaceBefore=12,
            spaceAfter=5,
            keepWithNext=True,
        ),
        "body": base,
        "cell": ParagraphStyle("cell", base, fontSize=8.5, leading=11),
        "num": ParagraphStyle("num", base, fontSize=8.5, leading=11, alignment=TA_RIGHT),
        "head": ParagraphStyle("head", base, fontName="VeraBd", fontSize=8, leading=10),
        "headnum": ParagraphStyle(
            "headnum", base, fontName="VeraBd", fontSize=8, leading=10, alignment=TA_RIGHT
        ),
        "label": ParagraphStyle("label", base, fontSize=8, leading=10, textColor=MUTED),
        "big": ParagraphStyle("big", base, fontName="VeraBd", fontSize=18, leading=22),
        "note": ParagraphStyle("note", base, fontSize=7.5, leading=9.5, textColor=MUTED),
    }


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _table(rows: list[list[Any]], widths: list[float], numeric: set[int]) -> Table:
    """A table with a bold header row, thin rules, and `numeric` columns right-aligned."""
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, LINE),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                *[("ALIGN", (c, 0), (c, -1), "RIGHT") for c in numeric],
            ]
        )
    )
    return table


def _pct(value: float | None) -> str:
    return f"{value:.0f}%" if value is not None else "—"


def _money(cents: int) -> str:
    return f"USD {cents / 100:,.0f}"


def _compact(cents: int) -> str:
    """Money for a headline: 'USD 3.24M', 'USD 325k', 'USD 940'."""
    value = cents / 100
    if value >= 1_000_000:
        return f"USD {value / 1_000_000:.2f}M"
    if value >= 10_000:
        return f"USD {value / 1000:.0f}k"
    return f"USD {value:,.0f}"


def _headline(r: MonthlyReport, st: dict[str, ParagraphStyle], width: float) -> Table:
    """Four figures side by side: NPS, its change, follow-up within 48h, revenue at risk."""
    s = r.current
    if s.responses:
        low, high = s.interval
        nps = (f"{s.nps:.0f}", f"95% interval {low:.0f} to {high:.0f}, n = {s.responses}")
    else:
        nps = ("—", "no answers this month")
    if r.change is None:
        change = ("—", "not enough answers to compare")
    else:
        change = (
            f"{r.change:+.1f}",
            ("significant at 95%" if r.significant else "within noise")
            + f"; {r.previous.nps:.0f} the month before",
        )
    p = r.program
    touched = (
        _pct(p.personal_rate),
        f"personal follow-ups within 48h (target 80%); automated {_pct(p.automated_rate)}",
    )
    at_risk = (
        _compact(r.at_risk.arr_cents),
        f"{_money(r.at_risk.arr_cents)} ARR, {r.at_risk.accounts} accounts, now",
    )
    cells = []
    for label, (value, note) in (
        (f"NPS, {r.label}", nps),
        ("Change from the month before", change),
        ("Followed up within 48h", touched),
        ("Revenue at risk", at_risk),
    ):
        cells.append([_p(label, st["label"]), _p(value, st["big"]), _p(note, st["note"])])
    table = Table([cells], colWidths=[width / 4] * 4)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), PANEL),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEAFTER", (0, 0), (-2, -1), 2, colors.white),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 7),
                ("LEFTPADDING", (0, 0), (-1, -1), 7),
            ]
        )
    )
    return table


def _scale(values: list[float]) -> tuple[float, float, float]:
    """The y axis: bottom, top and gridline step, in tens, within −100..100."""
    low = max(-100.0, math.floor(min(values) / 10) * 10)
    high = min(100.0, math.ceil(max(values) / 10) * 10)
    if high - low < 20:
        low, high = max(-100.0, low - 10), min(100.0, high + 10)
    step = 10.0 if high - low <= 60 else 20.0
    return low, high, step


def nps_chart(r: MonthlyReport, width: float, height: float = 62 * mm) -> Drawing:
    """NPS by month: the line, its 95% interval as a band, each month's value and n."""
    d = Drawing(width, height)
    points = [m for m in r.months if m.summary.responses]
    if not points:
        d.add(String(0, height / 2, "No answers in the last twelve months.", fontName="Vera"))
        return d
    left, right, bottom, top = 26.0, 8.0, 26.0, 12.0
    plot_w, plot_h = width - left - right, height - bottom - top
    lows = [m.summary.interval[0] for m in points]
    highs = [m.summary.interval[1] for m in points]
    low, high, step = _scale(lows + highs)

    def y(value: float) -> float:
        return bottom + (value - low) / (high - low) * plot_h

    slot = plot_w / len(r.months)
    xs = {m.start: left + slot * (i + 0.5) for i, m in enumerate(r.months)}
    tick = low
    while tick <= high + 1e-9:
        d.add(Line(left, y(tick), width - right, y(tick), strokeColor=LINE, strokeWidth=0.5))
        d.add(
            String(
                left - 4,
                y(tick) - 2.5,
                f"{tick:.0f}",
                fontName="Vera",
                fontSize=7,
                fillColor=MUTED,
                textAnchor="end",
            )
        )
        tick += step
    if low < 0 < high:
        d.add(Line(left, y(0), width - right, y(0), strokeColor=MUTED, strokeWidth=0.6))
    band = [(xs[m.start], y(m.summary.interval[1])) for m in points]
    band += [(xs[m.start], y(m.summary.interval[0])) for m in reversed(points)]
    if len(points) > 1:
        d.add(Polygon([c for xy in band for c in xy], fillColor=BAND, strokeColor=None))
        line = [c for m in points for c in (xs[m.start], y(m.summary.nps))]
        d.add(PolyLine(line, strokeColor=BLUE, strokeWidth=1.6))
    for m in points:
        x, v = xs[m.start], m.summary.nps
        this = m.start == r.month
        d.add(
            Circle(
                x,
                y(v),
                3.2 if this else 2.2,
                fillColor=INK if this else BLUE,
                strokeColor=colors.white,
                strokeWidth=0.6,
            )
        )
        d.add(
            String(
                x,
                y(v) + 5,
                f"{v:.0f}",
                fontName="VeraBd" if this else "Vera",
                fontSize=7,
                textAnchor="middle",
                fillColor=INK,
            )
        )
    for m in r.months:
        x = xs[m.start]
        name = f"{m.start:%b}" + (
            f" {m.start:%y}" if m.start.month == 1 or m is r.months[0] else ""
        )
        d.add(
            String(
                x,
                bottom - 11,
                name,
                fontName="Vera",
                fontSize=7,
                textAnchor="middle",
                fillColor=INK,
            )
        )
        d.add(
            String(
                x,
                bottom - 20,
                f"n={m.summary.responses}",
                fontName="Vera",
                fontSize=6,
                textAnchor="middle",
                fillColor=MUTED,
            )
        )
    return d


def _themes(
    moves: list[ThemeMove], r: MonthlyReport, st: dict[str, ParagraphStyle], width: float
) -> Table:
    head = ["Theme", "Answers", "vs prev.", "Accounts", "ARR", "Owner", "What is being done"]
    rows: list[list[Any]] = [
        [_p(h, st["headnum"] if 1 <= i <= 4 else st["head"]) for i, h in enumerate(head)]
    ]
    for rank, m in enumerate(moves, 1):
        plan = r.plan(m.figure.slug)
        late = ' <font color="#b91c1c">overdue</font>'
        done = [
            f"• {escape(title)} — {escape(when)}{late if overdue else ''}"
            for title, when, overdue in plan.lines()
        ]
        owner = plan.owner if plan.owner != "nobody" else "no owner"
        rows.append(
            [
                _p(f"{rank}. {m.figure.name}", st["cell"]),
                _p(m.figure.responses, st["num"]),
                _p(f"{m.change:+d}", st["num"]),
                _p(m.figure.accounts, st["num"]),
                _p(_money(m.figure.arr_cents), st["num"]),
                _p(owner, st["cell"]),
                Paragraph("<br/>".join(done) or "nothing planned yet", st["cell"]),
            ]
        )
    if len(rows) == 1:
        rows.append([_p("No detractor answers with a theme this month.", st["cell"])] + [""] * 6)
    widths = [width * w / 178 for w in (30, 17, 14, 18, 26, 24, 49)]
    return _table(rows, widths, set())


def _program(r: MonthlyReport, st: dict[str, ParagraphStyle], width: float) -> Table:
    p = r.program
    back = r.follow_up_return
    lines = [
        ("Cases opened", str(p.cases), ""),
        ("Automated follow-up within 48h", _pct(p.automated_rate), "target 100%"),
        ("Personal follow-up within 48h", _pct(p.personal_rate), "target 80%"),
        ("Customers responding to the follow-up", _pct(p.response_rate), "warn under 20%"),
        ("Resolved", str(p.resolved), f"can't fix {p.cant_fix}, open {p.open}"),
        ("Moved up on the next survey", _pct(p.score_change_rate), "passive or promoter"),
    ]
    for side, name in ((back.followed, "followed up"), (back.not_followed, "not followed up")):
        lines.append(
            (
                f"ARR kept 90 days on, {name}",
                _pct(side.kept_rate),
                f"{_money(side.live_arr_cents)} of {_money(side.arr_cents)}; "
                f"{side.live_accounts} of {side.accounts} accounts"
                + (" (small n)" if side.small and side.accounts else ""),
            )
        )
    if back.difference is not None:
        lines.append(
            (
                "Follow-up return",
                f"{back.difference:+.1f} points",
                f"worth {_money(back.worth_cents or 0)} at the followed-up accounts' ARR",
            )
        )
    rows = [[_p("Figure", st["head"]), _p("Value", st["headnum"]), _p("", st["head"])]]
    rows += [[_p(a, st["cell"]), _p(b, st["num"]), _p(c, st["note"])] for a, b, c in lines]
    return _table(rows, [width * 0.42, width * 0.16, width * 0.42], {1})


def _health(r: MonthlyReport, st: dict[str, ParagraphStyle], width: float) -> Table:
    rows: list[list[Any]] = [
        [_p("Band", st["head"]), _p("Accounts", st["headnum"]), _p("ARR", st["headnum"])]
    ]
    for band, accounts, arr in r.health:
        rows.append(
            [
                _p(f"{band.capitalize()} ({health.BAND_RANGES[band]})", st["cell"]),
                _p(accounts, st["num"]),
                _p(_money(arr), st["num"]),
            ]
        )
    return _table(rows, [width * 0.5, width * 0.2, width * 0.3], {1, 2})


def _commitments(r: MonthlyReport, st: dict[str, ParagraphStyle], width: float) -> Table:
    rows: list[list[Any]] = [
        [_p(h, st["head"]) for h in ("Owner", "Commitment", "Customer", "Due", "Status")]
    ]
    for c in r.commitments:
        status = f"done {c.done_at:%-d %b}" if c.done_at else "open"
        rows.append(
            [
                _p(c.owner, st["cell"]),
                _p(c.title, st["cell"]),
                _p(f"{c.customer} (case {c.case_id})", st["cell"]),
                _p(f"{c.due_at:%-d %b %Y}", st["cell"]),
                _p(status, st["cell"]),
            ]
        )
    if len(rows) == 1:
        rows.append([_p("No commitments made this month.", st["cell"]), "", "", "", ""])
    return _table(rows, [width * w for w in (0.16, 0.34, 0.25, 0.12, 0.13)], set())


def render(r: MonthlyReport) -> bytes:
    _fonts()
    st = _styles()
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=f"closeloop monthly report, {r.label}",
        author="closeloop",
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
    )
    width = doc.width

    def footer(canvas: Any, page: Any) -> None:
        canvas.saveState()
        canvas.setFont("Vera", 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, 10 * mm, f"closeloop · Monthly report · {r.label}")
        canvas.drawRightString(A4[0] - MARGIN, 10 * mm, f"page {page.page}")
        canvas.restoreState()

    story: list[Any] = [
        _p(f"Monthly report — {r.label}", st["title"]),
        _p(
            f"{r.month:%-d %B %Y} to {r.last_day:%-d %B %Y}. Every answer, case and account "
            "in closeloop; NPS with its 95% interval.",
            st["subtitle"],
        ),
        _headline(r, st, width),
        _p("NPS by month", st["h2"]),
        nps_chart(r, width),
        _p(
            "The line is NPS; the band its 95% interval, wider where fewer answered. "
            f"The darker point is {r.label}.",
            st["note"],
        ),
        _p("Top detractor themes by number of answers", st["h2"]),
        _themes(r.top_by_count, r, st, width),
        _p("Top detractor themes by ARR", st["h2"]),
        _themes(r.top_by_arr, r, st, width),
        _p(
            "An answer counts under each of its themes; an account's ARR once per theme. "
            "“vs prev.” compares with the month before.",
            st["note"],
        ),
        _p("Follow-up program", st["h2"]),
        _program(r, st, width),
        _p(
            f"Cases opened in {r.label}. The return compares detractor accounts whose latest "
            "case of the twelve months opened at least 90 days before the month's end: "
            "an association, not an experiment.",
            st["note"],
        ),
        _p("Account health now", st["h2"]),
        _health(r, st, width),
        _p(
            "Each live account scored 0–100 from its NPS, open cases, silence and billing "
            "warnings (the Account health page has each account's reasons).",
            st["note"],
        ),
        _p(f"What owners committed to ({len(r.commitments)})", st["h2"]),
        _commitments(r, st, width),
        Spacer(1, 4 * mm),
        _p(
            f"Revenue at risk now: {_money(r.at_risk.arr_cents)} across {r.at_risk.accounts} "
            "accounts with an open detractor case, a silent detractor or passive, a falling "
            "score or a billing warning.",
            st["body"],
        ),
    ]
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
