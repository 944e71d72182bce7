"""Health cases: once a day, an account whose health fell opens a case for its owner,
when the policy asks for it and no detractor or health case is open."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from closeloop.delivery.models import Delivery
from closeloop.insights import watch
from closeloop.insights.models import HealthWatchRun
from closeloop.integrations.models import AccountSignal
from closeloop.loop import actions
from closeloop.loop.models import FollowUpCase, Notification, Task, TriagePolicy
from closeloop.loop.payloads import case_json
from closeloop.loop.policy import Action
from closeloop.surveys.models import Account, Response
from closeloop.team.models import User

from .conftest import ApiClient, answer_at
from .test_pages_settings import as_user, policy_form

pytestmark = pytest.mark.django_db


def _falling(api: ApiClient, account: Account) -> None:
    """The account's people answered 3 sixty days ago (−25 then and now); since, its
    billing warns: a scheduled cancellation (−30) and a failed payment (−15)."""
    body = answer_at(account, 3, "pat@example.com", name="Pat Lee")
    assert api.post_json("/api/v1/responses", body).status_code == 201
    now = timezone.now()
    Response.objects.filter(account=account).update(created_at=now - timedelta(days=60))
    FollowUpCase.objects.filter(account=account).delete()
    AccountSignal.objects.create(account=account, kind="cancel_scheduled", at=now - timedelta(2))
    AccountSignal.objects.create(account=account, kind="payment_failed", at=now - timedelta(3))


def _next_day() -> None:
    HealthWatchRun.objects.all().delete()


def test_it_opens_a_health_case_for_the_owner_when_an_accounts_health_falls(
    api: ApiClient, smb: Account, enterprise: Account, agent: User
) -> None:
    _falling(api, smb)
    api.post_json("/api/v1/responses", answer_at(enterprise, 10, "ceo@example.com"))
    assert watch.handle_health_watch()
    (case,) = FollowUpCase.objects.filter(loop=FollowUpCase.Loop.HEALTH)
    assert case.account == smb and case.owner == agent and case.person.email == "pat@example.com"
    assert case.response is None and case.score is None and case.action == Action.CALL
    assert case.health is not None
    assert (case.health["was"], case.health["score"], case.health["days"]) == (75, 30, 30)
    assert [p for p, _ in case.health["reasons"]] == [-30, -25, -15]
    assert case.due_at is not None and case.next_escalation_at == case.due_at
    assert Task.objects.get(case=case, kind="call").title.startswith("Call Pat Lee at Initech")
    assert Notification.objects.filter(user=agent, case=case).exists()
    alert = Delivery.objects.get(to=agent.email, case=case)
    assert "Health fell 75 → 30 at Initech" in alert.subject
    assert "cancellation scheduled" in alert.body
    payload = case_json(case)
    assert payload["loop"] == "health" and payload["response"] is None
    assert payload["health"]["score"] == 30
    run = HealthWatchRun.objects.get()
    assert (run.accounts, run.fell, run.opened) == (2, 1, 1)
    # Once a day; the next day, the open case keeps a second one away …
    assert not watch.handle_health_watch()
    _next_day()
    assert watch.handle_health_watch()
    assert FollowUpCase.objects.filter(loop="health").count() == 1
    # … and once closed, so do the quiet days after it.
    actions.close(case, FollowUpCase.Resolution.RESOLVED, "talked", "Spoke with Pat", agent)
    _next_day()
    watch.handle_health_watch()
    assert FollowUpCase.objects.filter(loop="health").count() == 1


def test_it_shows_the_health_case_to_its_owner_without_quoting_the_reasons_to_the_customer(
    api: ApiClient, smb: Account, agent: User
) -> None:
    _falling(api, smb)
    watch.handle_health_watch()
    case = FollowUpCase.objects.get(loop="health")
    client = Client()
    client.force_login(agent)
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert "Why its health fell" in page and "75 → 30" in page
    assert "cancellation scheduled" in page and "Playbook for a health case" in page
    assert "Checking in on Initech" in page  # the first email's draft
    draft = page[page.index('name="body"') :]
    draft = draft[: draft.index("</textarea>")]
    assert "cancellation" not in draft and "payment" not in draft and "/10" not in draft
    inbox = client.get("/cases/?loop=health").content.decode()
    assert f"/cases/{case.pk}/" in inbox and "Health 75 → 30 in 30 days" in inbox
    detail = api.get_json(f"/api/v1/cases/{case.pk}")
    assert detail.status_code == 200, detail.content
    assert detail.json()["loop"] == "health" and detail.json()["score"] is None
    listed = api.get_json("/api/v1/cases", {"loop": "health"})
    assert listed.status_code == 200 and [c["id"] for c in listed.json()["results"]] == [case.pk]
    # Themes and re-triage belong to answers: a clear refusal, not a 500.
    refused = api.post_json(f"/api/v1/cases/{case.pk}/themes", {"add": ["billing"]})
    assert refused.status_code == 422 and "health case has no answer" in refused.text
    retriaged = api.post_json(f"/api/v1/cases/{case.pk}/retriage", {})
    assert retriaged.status_code == 422 and "nothing to triage" in retriaged.text


def test_it_opens_none_when_the_policy_says_no_or_a_detractor_case_is_open(
    api: ApiClient, smb: Account, admin_user: User
) -> None:
    _falling(api, smb)
    # An open detractor case already puts someone on the account.
    assert (
        api.post_json("/api/v1/responses", answer_at(smb, 2, "kim@example.com")).status_code == 201
    )
    assert watch.handle_health_watch()
    assert not FollowUpCase.objects.filter(loop="health").exists()
    FollowUpCase.objects.filter(account=smb).delete()
    # The admin turns health cases off.
    client = as_user(admin_user, "pw-admin-123")
    data = policy_form(client)
    assert data["hc_enabled"] == ["on"] and data["hc_fall_points"] == "20"
    data.pop("hc_enabled")
    assert client.post("/settings/follow-up/", data).status_code == 302
    assert TriagePolicy.current().rules.health_cases.enabled is False
    _next_day()
    assert not watch.handle_health_watch()
    assert not FollowUpCase.objects.filter(loop="health").exists()


def test_it_names_the_health_case_field_when_the_policy_form_is_wrong(admin_user: User) -> None:
    client = as_user(admin_user, "pw-admin-123")
    data = policy_form(client)
    data.update({"hc_action": Action.AUTOMATED_BRIEF_QUESTION.value, "hc_days": "3"})
    reply = client.post("/settings/follow-up/", data)
    page = reply.content.decode()
    assert reply.status_code == 422
    assert "health_cases.action" in page and "waits for a person" in page
    assert "health_cases.days" in page
