"""The pages in a real Chromium: log in, dashboard charts, htmx filtering, CSV upload."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from closeloop.loop.intake import record_responses
from closeloop.surveys.ingest import PersonData, ResponseData
from closeloop.team.models import User

from .browser import log_in
from .conftest import drain

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _answers(*rows: tuple[str, int, str, int]) -> None:
    now = timezone.now()
    record_responses(
        [
            ResponseData(
                person=PersonData(email=email),
                score=score,
                comment=comment,
                created_at=now - timedelta(days=days_ago),
            )
            for email, score, comment, days_ago in rows
        ]
    )


def test_it_shows_the_dashboard_with_nps_interval_and_charts(
    live_server: Any, page: Any, agent: User
) -> None:
    _answers(
        ("a@x.io", 10, "great", 1),
        ("b@x.io", 9, "", 2),
        ("c@x.io", 2, "slow", 3),
        ("d@x.io", 7, "", 4),
    )
    log_in(page, live_server.url, "alex", "pw-alex-123")
    assert page.locator(".metric .big").first.inner_text() == "25"
    assert "n = 4" in page.locator(".metric").first.inner_text()
    page.wait_for_function("Chart.getChart('trend') && Chart.getChart('distribution')")
    counts = page.evaluate("Chart.getChart('distribution').data.datasets[0].data")
    assert counts == [0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1]


def test_it_sends_an_anonymous_visitor_to_the_login_page(live_server: Any, page: Any) -> None:
    page.goto(f"{live_server.url}/responses/")
    assert page.url.startswith(f"{live_server.url}/login/")
    page.fill("#id_username", "nobody")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert "do not match" in page.locator(".error").inner_text()


def test_it_filters_responses_in_place_with_htmx(live_server: Any, page: Any, agent: User) -> None:
    _answers(("a@x.io", 1, "Billing charged us twice", 1), ("b@x.io", 9, "Lovely support", 2))
    log_in(page, live_server.url, "alex", "pw-alex-123")
    page.goto(f"{live_server.url}/responses/")
    assert page.locator("table.responses tbody tr").count() == 2
    page.evaluate("window.__marker = 'same page'")
    page.fill("input[name=q]", "billing")
    page.wait_for_function("document.querySelectorAll('table.responses tbody tr').length === 1")
    assert "Billing charged us twice" in page.locator("table.responses").inner_text()
    assert page.evaluate("window.__marker") == "same page"  # swapped, not reloaded
    assert "q=billing" in page.url


def test_it_uploads_a_csv_and_reports_problems_by_row(
    live_server: Any, page: Any, agent: User, tmp_path: Path
) -> None:
    csv_file = tmp_path / "answers.csv"
    csv_file.write_text("email,score,comment\nok@x.io,8,fine\nbad@x.io,12,too high\n")
    log_in(page, live_server.url, "alex", "pw-alex-123")
    page.goto(f"{live_server.url}/import/")
    page.set_input_files("input[type=file]", str(csv_file))
    page.click("button.primary")
    page.wait_for_selector("text=Waiting for the worker")
    drain()  # the worker's heavy lane runs the import; the page refreshes by itself
    page.wait_for_selector("text=Nothing was imported")
    report = page.locator("section.report").last.inner_text()
    assert "Nothing was imported" in report and "score" in report
    assert page.locator(".report tbody tr td").first.inner_text() == "3"
    page.set_input_files("input[type=file]", str(csv_file))
    page.check("input[name=valid_only]")
    page.click("button.primary")
    page.wait_for_selector("text=Waiting for the worker")
    drain()
    page.wait_for_selector("text=Imported 1 row (1 new)")


def test_it_checks_and_schedules_a_wave_and_shows_its_progress(
    live_server: Any, page: Any, manager: User, enterprise: Any
) -> None:
    from closeloop.surveys.models import Person, Survey, SurveyRequest

    Survey.default()
    for i in range(3):
        Person.objects.create(email=f"p{i}@globex.example", account=enterprise)
    log_in(page, live_server.url, "maria", "pw-maria-123")
    page.goto(f"{live_server.url}/surveys/")
    page.click("text=NPS")
    assert "How likely are you to recommend" in page.locator("h1").inner_text()
    page.frame_locator("iframe[title='Survey email preview']").locator("text=10").first.wait_for()
    page.click("text=Add people")
    page.fill("input[name=tier]", "enterprise")
    page.click("button[value=check]")
    assert "would reach 3 people" in page.locator(".help").inner_text()
    assert SurveyRequest.objects.count() == 0
    page.click("button[value=schedule]")
    page.wait_for_selector("ol.funnel")
    invited = page.locator("ol.funnel li").first.inner_text()
    assert "Invited" in invited and "3" in invited
    assert page.locator("table tbody tr").count() == 3


def test_it_draws_the_insight_charts_and_opens_a_points_answers(
    live_server: Any, page: Any, agent: User
) -> None:
    from closeloop.insights.models import Incident

    _answers(*[(f"p{i}@x.io", i % 11, "", 3 + i % 40) for i in range(120)])
    Incident.objects.create(
        kind="outage", title="EU down", started_at=timezone.now() - timedelta(days=20)
    )
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server.url, "alex", "pw-alex-123")
    page.goto(f"{live_server.url}/?grain=week")
    page.wait_for_function("Chart.getChart('trend') && Chart.getChart('detractors')")
    labels = page.evaluate("Chart.getChart('trend').data.labels")
    assert len(labels) == 26
    assert "EU down" in page.locator("ul.events").inner_text()
    # Clicking the newest week with answers opens that week's answers (drawn without
    # animation first, so the point is where it will stay).
    box = page.evaluate(
        "(() => { const c = Chart.getChart('trend'); c.stop(); c.update('none');"
        " const values = c.data.datasets[2].data;"
        " let i = values.length - 1; while (values[i] === null) i--;"
        " const p = c.getDatasetMeta(2).data[i]; const r = c.canvas.getBoundingClientRect();"
        " return [r.left + p.x, r.top + p.y]; })()"
    )
    page.mouse.click(box[0], box[1])
    page.wait_for_url("**/responses/?**")
    assert "since=" in page.url
    page.goto(f"{live_server.url}/insights/segments/?by=survey")
    page.wait_for_function("Chart.getChart('segments')")
    page.goto(f"{live_server.url}/insights/program/")
    page.wait_for_function("Chart.getChart('program-sla') && Chart.getChart('program-outcomes')")
    assert errors == []


def test_it_inserts_a_protocol_answer_into_the_message(
    live_server: Any, page: Any, agent: User, smb: Any
) -> None:
    from closeloop.loop import protocols
    from closeloop.loop.models import FollowUpCase
    from closeloop.themes import learning
    from closeloop.themes.models import Theme

    _answers(("pat@x.io", 3, "Charged twice this month", 0))
    case = FollowUpCase.objects.get()
    # A transactional test starts from an emptied database: the default themes may be gone.
    billing, _ = Theme.objects.get_or_create(slug="billing", defaults={"name": "Billing"})
    learning.correct(case.response, [billing], via="test")
    protocols.set_sheet(
        billing,
        team=None,
        approved_answers=[{"title": "Refunded", "body": "Hi {first_name}, it is refunded."}],
        next_steps=["Check Stripe"],
        loop_in="Finance",
    )
    log_in(page, live_server.url, "alex", "pw-alex-123")
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    page.click("summary:has-text('Refunded')")
    page.click("button:has-text('Insert into the message')")
    assert page.input_value("#body") == "Hi there, it is refunded."
    # Text the owner wrote stays; the answer goes where the cursor is.
    page.fill("#body", "First line. ")
    page.click("button[data-insert]")
    assert page.input_value("#body") == "First line. Hi there, it is refunded."
