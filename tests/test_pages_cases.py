"""The follow-up pages: inbox queues, the case page and its actions, notifications, quarantine."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from closeloop.delivery.models import Delivery
from closeloop.loop.inbound import receive
from closeloop.loop.models import Activity, FollowUpCase, InboundMessage, Notification
from closeloop.surveys.models import Account
from closeloop.team.models import User

from .browser import log_in
from .conftest import ApiClient, open_case

pytestmark = pytest.mark.django_db


def detractor(api: ApiClient, account: Account, email: str, score: int = 3) -> FollowUpCase:
    name = email.split("@")[0].title()
    return open_case(api, account, score, email, name=name, comment="Exports fail")


def logged_in(user: User, password: str) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


def test_it_lists_my_cases_by_priority_with_queue_counts_and_revenue_at_risk(
    api: ApiClient, agent: User, enterprise: Account, smb: Account
) -> None:
    detractor(api, smb, "small@example.com")
    big = detractor(api, enterprise, "big@example.com")
    page = logged_in(agent, "pw-alex-123").get("/cases/").content.decode()
    assert page.index("Big") < page.index("Small")
    assert 'My cases <span class="count">2</span>' in page
    assert 'Unassigned <span class="count">0</span>' in page
    assert "USD 126,000" in page  # 120,000 + 6,000 ARR with open detractor cases
    assert f"/cases/{big.pk}/" in page


def test_it_shows_the_case_with_context_guide_and_a_prefilled_composer(
    api: ApiClient, agent: User, enterprise: Account
) -> None:
    case = detractor(api, enterprise, "pat@example.com")
    page = logged_in(agent, "pw-alex-123").get(f"/cases/{case.pk}/").content.decode()
    for text in (
        "Globex",
        "USD 120,000",
        "enterprise",
        "Exports fail",
        "Conversation guide",
        "Ask one open question",
        "Thank you for your score of 3 out of 10",
        "Ask an open question about the main issue",
    ):
        assert text in page


def test_it_logs_a_call_and_sends_a_written_email_from_the_person_writing(
    api: ApiClient, agent: User, manager: User, enterprise: Account
) -> None:
    case = detractor(api, enterprise, "pat@example.com")
    client = logged_in(manager, "pw-maria-123")
    r = client.post(
        f"/cases/{case.pk}/act", {"action": "call", "outcome": "talked", "note": "Export bug"}
    )
    assert r.status_code == 302
    r = client.post(
        f"/cases/{case.pk}/act",
        {"action": "email", "subject": "Your 3/10", "body": "Hi Pat, what happened?"},
    )
    email = Delivery.objects.get(case=case, purpose="outreach")
    assert email.from_email == f"Maria <{manager.email}>" and email.reply_to == case.reply_address
    case.refresh_from_db()
    assert case.status == "in_conversation"
    call = case.activities.get(kind=Activity.Kind.CALL_LOGGED)
    assert call.actor == manager and call.text == "Export bug"


def test_it_explains_a_refused_close_and_changes_nothing(
    api: ApiClient, agent: User, enterprise: Account
) -> None:
    case = detractor(api, enterprise, "pat@example.com")
    client = logged_in(agent, "pw-alex-123")
    r = client.post(
        f"/cases/{case.pk}/act",
        {"action": "close", "resolution": "resolved", "reason": "fixed", "note": ""},
        follow=True,
    )
    assert "note: a closing note is required" in r.content.decode()
    case.refresh_from_db()
    assert case.status == "open"


def test_it_refuses_actions_from_viewers(api: ApiClient, viewer: User, enterprise: Account) -> None:
    case = detractor(api, enterprise, "pat@example.com")
    client = logged_in(viewer, "pw-vic-123")
    assert client.get(f"/cases/{case.pk}/").status_code == 200
    assert client.post(f"/cases/{case.pk}/act", {"action": "note", "text": "hi"}).status_code == 403


def test_it_marks_notifications_read_when_opened(
    api: ApiClient, agent: User, enterprise: Account
) -> None:
    detractor(api, enterprise, "pat@example.com")
    client = logged_in(agent, "pw-alex-123")
    assert 'aria-label="Notifications: 1 unread"' in client.get("/cases/").content.decode()
    assert "New: Detractor 3/10" in client.get("/notifications/").content.decode()
    assert not Notification.objects.filter(user=agent, read_at__isnull=True).exists()


def test_it_lets_a_manager_place_a_quarantined_reply_on_its_case(
    api: ApiClient, manager: User, agent: User, enterprise: Account
) -> None:
    case = detractor(api, enterprise, "pat@example.com")
    message, _ = receive(b"From: pat@example.com\r\nSubject: re\r\n\r\nStill broken", "http")
    assert message.status == "quarantined"
    client = logged_in(manager, "pw-maria-123")
    assert "Still broken" in client.get("/settings/quarantine/").content.decode()
    client.post(
        "/settings/quarantine/", {"message": message.pk, "case": case.pk, "action": "attach"}
    )
    message.refresh_from_db()
    case.refresh_from_db()
    assert message.status == "matched" and message.case == case
    assert case.status == "in_conversation"
    assert logged_in(agent, "pw-alex-123").get("/settings/quarantine/").status_code == 403


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_works_a_case_in_a_real_browser(
    live_server: Any, page: Any, agent: User, enterprise: Account
) -> None:
    from closeloop.access.models import ApiKey

    _, key = ApiKey.issue("browser")
    case = detractor(ApiClient(key), enterprise, "pat@example.com", score=1)
    log_in(page, live_server.url, "alex", "pw-alex-123")
    page.goto(f"{live_server.url}/cases/")
    page.click("text=Pat")
    page.click("text=Log a call")
    page.select_option("#outcome", "talked")
    page.fill("#call-note", "They lose an hour a week on exports")
    page.click("text=Log call")
    page.wait_for_selector("text=Call logged.")
    assert "They lose an hour a week on exports" in page.inner_text("ol.timeline")
    assert "In conversation" in page.inner_text(".case-meta")
    case.refresh_from_db()
    assert case.first_touch_at is not None
    assert InboundMessage.objects.count() == 0


def test_it_shows_themes_sentiment_and_their_probes_and_takes_corrections(
    api: ApiClient, agent: User, viewer: User, enterprise: Account
) -> None:
    from closeloop.themes.models import Theme, ThemeExample

    from .conftest import drain

    case = open_case(
        api,
        enterprise,
        2,
        "pat@example.com",
        comment="We were invoiced twice, which is infuriating. Your team was lovely about it.",
    )
    client = logged_in(agent, "pw-alex-123")
    assert "Reading the comment…" in client.get(f"/cases/{case.pk}/").content.decode()
    drain()
    page = client.get(f"/cases/{case.pk}/").content.decode()
    billing = Theme.objects.get(slug="billing")
    assert 'class="theme-chip"' in page and ">Billing" in page
    assert "Which charge or invoice is wrong?" in page  # the theme's probe in the guide
    assert 'class="sentiment ' in page  # the comment's, then each sentence's
    assert 'class="sentiment-text negative"' in page and 'class="sentiment-text positive"' in page
    # The theme's probes are read from the theme, so an edited probe shows.
    billing.probes = ["Which invoice number?"]
    billing.save()
    assert "Which invoice number?" in client.get(f"/cases/{case.pk}/").content.decode()

    docs = Theme.objects.get(slug="documentation")
    r = client.post(f"/cases/{case.pk}/act", {"action": "theme_add", "theme": docs.pk}, follow=True)
    assert "Theme Documentation added" in r.content.decode()
    client.post(f"/cases/{case.pk}/act", {"action": "theme_remove", "theme": billing.pk})
    example = ThemeExample.objects.get(response=case.response)
    assert "documentation" in example.themes and "billing" not in example.themes
    assert example.created_by == agent and example.via == "case page"
    r = client.post(f"/cases/{case.pk}/act", {"action": "theme_add", "theme": "x"}, follow=True)
    assert "theme: choose a theme" in r.content.decode()
    assert (
        logged_in(viewer, "pw-vic-123")
        .post(f"/cases/{case.pk}/act", {"action": "theme_add", "theme": docs.pk})
        .status_code
        == 403
    )


def test_it_filters_the_inbox_by_theme_and_shows_each_cases_themes(
    api: ApiClient, agent: User, enterprise: Account
) -> None:
    from closeloop.themes import learning
    from closeloop.themes.models import Theme

    billing = detractor(api, enterprise, "pat@example.com")
    other = detractor(api, enterprise, "kim@example.com")
    learning.correct(billing.response, [Theme.objects.get(slug="billing")], via="test")
    client = logged_in(agent, "pw-alex-123")
    page = client.get("/cases/", {"view": "all", "theme": "billing"}).content.decode()
    assert f"/cases/{billing.pk}/" in page and f"/cases/{other.pk}/" not in page
    assert 'class="theme-chip by-person"' in page and ">Billing</a>" in page
    assert '<option value="billing" selected>' in page
    everyone = client.get("/cases/", {"view": "all"}).content.decode()
    assert f"/cases/{other.pk}/" in everyone


def test_it_offers_an_admin_the_re_triage_of_a_case_under_an_older_policy(
    api: ApiClient, smb: Account, admin_user: User, agent: User
) -> None:
    from closeloop.loop.models import TriagePolicy
    from closeloop.loop.policy import PolicyConfig

    case = open_case(api, smb, 4)
    admin = Client()
    admin.force_login(admin_user)
    assert "Re-triage under policy" not in admin.get(f"/cases/{case.pk}/").content.decode()
    TriagePolicy.save_new_version(PolicyConfig(), admin_user)
    page = admin.get(f"/cases/{case.pk}/").content.decode()
    assert f"Re-triage under policy v{case.policy.version + 1}" in page
    agent_client = Client()
    agent_client.force_login(agent)
    assert "Re-triage under policy" not in agent_client.get(f"/cases/{case.pk}/").content.decode()
    assert agent_client.post(f"/cases/{case.pk}/act", {"action": "retriage"}).status_code == 403
    done = admin.post(f"/cases/{case.pk}/act", {"action": "retriage"}, follow=True)
    assert f"Re-triaged from policy v{case.policy.version}" in done.content.decode()
    case.refresh_from_db()
    assert case.policy == TriagePolicy.current()
