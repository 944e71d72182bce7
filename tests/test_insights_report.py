"""The monthly report: its figures against a recount, its CSV and PDF, and its email,
sent once on the 1st to the users who chose it, through a real SMTP server."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from closeloop.core.nps import NpsSummary
from closeloop.insights import report, report_pdf
from closeloop.insights.models import MonthlyReportRun
from closeloop.loop.models import FollowUpCase, Task
from closeloop.surveys.models import Account, Response
from closeloop.team.models import Team, User

from .conftest import drain
from .insights_data import World, generate, generate_cases, local_day, tag_themes
from .loopback import SmtpServer

pytestmark = pytest.mark.django_db
ZONE = "America/New_York"
THEMES = ["pricing", "bugs", "support", "performance", "billing"]


@pytest.fixture
def world(settings: Any, manager: User, agent: User) -> World:
    settings.ORG_TIME_ZONE = ZONE
    world = generate(seed=91, answers=1400)
    for i, r in enumerate(world.responses):
        r.tags = [THEMES[(i * i) % 5]] + (["pricing"] if i % 7 == 0 else [])
    Response.objects.bulk_update(world.responses, ["tags"])
    tag_themes(world.responses)
    cases = generate_cases(world, 92, [manager, agent], [Team.objects.create(name="EMEA")])
    for n, case in enumerate(cases[:40]):
        Task.objects.create(
            case=case,
            kind=Task.Kind.COMMITMENT,
            title=f"promise {n}",
            owner=agent,
            due_at=case.created_at + timedelta(days=20),
            created_at=case.created_at + timedelta(hours=2),
        )
    return world


def _in_month(moment: datetime, month: date) -> bool:
    day = local_day(moment, ZONE)
    return (day.year, day.month) == (month.year, month.month)


def test_it_reports_a_month_like_a_recount(world: World) -> None:
    month = date(2026, 2, 1)
    r = report.build(month)
    scores = [x.score for x in world.responses if _in_month(x.created_at, month)]
    before = [x.score for x in world.responses if _in_month(x.created_at, date(2026, 1, 1))]
    assert r.current == NpsSummary.from_scores(scores)
    assert r.previous == NpsSummary.from_scores(before)
    counts: Counter[str] = Counter()
    for x in world.responses:
        if x.score <= 6 and _in_month(x.created_at, month):
            counts.update(set(x.tags))
    assert [m.figure.slug for m in r.top_by_count] == [
        t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    ]
    assert [m.figure.responses for m in r.top_by_count] == sorted(counts.values(), reverse=True)[:3]
    arr = [m.figure.arr_cents for m in r.top_by_arr]
    assert arr == sorted(arr, reverse=True) and len(arr) == 3
    opened = [c for c in FollowUpCase.objects.all() if _in_month(c.created_at, month)]
    assert r.program.cases == len(opened)
    promised = [t for t in Task.objects.all() if _in_month(t.created_at, month)]
    assert sorted(c.title for c in r.commitments) == sorted(t.title for t in promised)


def test_it_downloads_the_report_as_csv_and_pdf(world: World, viewer: User) -> None:
    client = Client()
    client.force_login(viewer)
    page = client.get("/insights/report/", {"month": "2026-02"})
    assert page.status_code == 200 and "Feb 2026" in page.content.decode()
    text = b"".join(
        client.get("/insights/report/", {"month": "2026-02", "format": "csv"}).streaming_content
    ).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["section"] == "NPS" and rows[0]["item"] == "Feb 2026"
    assert any(r["section"] == "Commitments" for r in rows)
    pdf = client.get("/insights/report/", {"month": "2026-02", "format": "pdf"})
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert b"/Type /Page" in pdf.content and len(pdf.content) > 5000


def test_it_prints_a_report_an_executive_would_forward(world: World, agent: User) -> None:
    """Whole section headings (not a letter per line), NPS by month with each month's
    n, and each top theme with its owner and roadmap item."""
    from pypdf import PdfReader

    from closeloop.loop.models import RoadmapItem
    from closeloop.themes.models import Theme

    month = date(2026, 2, 1)
    built = report.build(month)
    top = Theme.objects.get(slug=built.top_by_count[0].figure.slug)
    top.owner = agent
    top.save()
    with time_machine.travel(datetime(2026, 1, 20, tzinfo=UTC)):
        RoadmapItem.add(top, agent, "Faster invoices", target_date="2026-03-15")
    built = report.build(month)
    assert [p.start for p in built.months][-1] == month and len(built.months) == 12
    feb = built.months[-1].summary
    assert feb == built.current
    plan = built.plan(top.slug)
    # Read today, long after its target: it says so.
    assert plan.owner == "Alex"
    assert "Faster invoices (planned, by 15 Mar 2026 — overdue)" in plan.describe()
    pages = PdfReader(io.BytesIO(report_pdf.render(built))).pages
    lines = [line.strip() for page in pages for line in page.extract_text().splitlines()]
    for heading in (
        "Monthly report — Feb 2026",
        "NPS by month",
        "Top detractor themes by number of answers",
        "Top detractor themes by ARR",
        "Follow-up program",
        "Account health now",
    ):
        assert heading in lines, heading
    assert not [line for line in lines if len(line) == 1 and line.isalpha()]
    text = "\n".join(lines)
    assert f"n={feb.responses}" in text and f"{feb.nps:.0f}" in text
    assert "Alex" in text and "Faster invoices" in text
    assert "ARR kept 90 days on, followed up" in text
    rows = report.rows(built)
    bands = [r for r in rows if r[0] == "Account health"]
    assert [r[1] for r in bands] == ["healthy", "watch", "at risk"]
    live = Account.objects.filter(churned_at__isnull=True).count()
    assert sum(int(r[2].split()[0]) for r in bands) == live
    assert any(r[0] == "NPS by month" and r[1] == "Feb 2026" for r in rows)
    assert any("owner Alex" in str(r[3]) and "Faster invoices" in str(r[3]) for r in rows)


def test_it_names_a_bad_month(world: World, viewer: User) -> None:
    client = Client()
    client.force_login(viewer)
    page = client.get("/insights/report/", {"month": "Feb"})
    assert page.status_code == 200 and "is not a month like 2026-10" in page.content.decode()
    assert client.get("/insights/report/", {"month": "13-2026", "format": "pdf"}).status_code == 400
    assert (
        "format: must be csv or pdf"
        in client.get("/insights/report/", {"month": "2026-02", "format": "doc"}).content.decode()
    )


def test_it_emails_last_months_report_once_on_the_first(
    world: World, smtp: SmtpServer, manager: User, agent: User, viewer: User
) -> None:
    client = Client()
    client.force_login(viewer)
    client.post("/insights/report/", {"monthly_report": "on"})
    manager.monthly_report = True
    manager.save()
    with time_machine.travel(datetime(2026, 3, 1, 3, tzinfo=UTC)):  # still 28 Feb in New York
        drain()
        assert not MonthlyReportRun.objects.exists()
    with time_machine.travel(datetime(2026, 3, 1, 14, tzinfo=UTC)):
        drain()
        drain()
    run = MonthlyReportRun.objects.get()
    assert (run.month, run.recipients) == (date(2026, 2, 1), 2)
    mail = smtp.inbox.wait_for(2)
    assert sorted(m["To"] for m in mail) == ["maria@example.com", "vic@example.com"]
    assert mail[0]["Subject"].startswith("closeloop monthly report, Feb 2026: NPS")
    body = mail[0].get_content()
    assert "TOP DETRACTOR THEMES BY COUNT" in body and "/insights/report/?month=2026-02" in body
    with time_machine.travel(datetime(2026, 3, 20, 14, tzinfo=UTC)):
        assert not report.handle_monthly_report()  # past the catch-up week: nothing more
    assert len(smtp.inbox.messages) == 2 and Account.objects.exists()
