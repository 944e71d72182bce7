"""Executive sponsors: the highest-value accounts' sponsor hears of detractors and of replies."""

from __future__ import annotations

import pytest

from closeloop.loop import imports
from closeloop.loop.inbound import receive
from closeloop.loop.models import Activity, TriagePolicy
from closeloop.loop.policy import PolicyConfig
from closeloop.surveys.models import Account
from closeloop.team.models import Role, User

from .conftest import ApiClient, drain, open_case
from .loopback import SmtpServer
from .test_loop_replies import mime

pytestmark = pytest.mark.django_db


@pytest.fixture
def sponsor(db: object) -> User:
    return User.objects.create_user(
        "vp", "vp@example.com", "pw-vp-123", first_name="Val", role=Role.MANAGER
    )


def test_it_tells_the_sponsor_of_a_top_account_and_of_the_customer_s_reply(
    api: ApiClient, enterprise: Account, sponsor: User, smtp: SmtpServer
) -> None:
    enterprise.executive_sponsor = sponsor
    enterprise.save()
    case = open_case(api, enterprise, 2, name="Pat Lee", comment="We are looking at others")
    assert list(case.watchers.all()) == [sponsor]
    assert sponsor.notifications.get(case=case).text.startswith("Your account Globex")
    assert case.activities.filter(kind=Activity.Kind.NOTIFIED, data__sponsor=sponsor.pk).exists()
    drain()
    (alert,) = smtp.inbox.to("vp@example.com")
    assert alert["Subject"].strip().startswith("Executive sponsor:") and "looking at others" in (
        alert.get_content()
    )
    receive(mime(case.reply_address), "http")
    drain()
    assert len(smtp.inbox.to("vp@example.com")) == 2
    assert "The export to CSV fails" in smtp.inbox.to("vp@example.com")[1].get_content()


def test_it_leaves_the_sponsor_out_below_the_policy_threshold(
    api: ApiClient, smb: Account, enterprise: Account, sponsor: User
) -> None:
    Account.objects.filter(pk__in=[smb.pk, enterprise.pk]).update(executive_sponsor=sponsor)
    small = open_case(api, smb, 2, "small@example.com")
    assert not small.watchers.exists() and not sponsor.notifications.exists()
    TriagePolicy.save_new_version(
        PolicyConfig.model_validate({"executive_sponsor": {"arr_at_least": None, "tiers": []}}),
        None,
    )
    big = open_case(api, enterprise, 2, "big@example.com")
    assert not big.watchers.exists()


def test_it_sets_sponsors_by_api_and_csv_and_adds_watchers_by_hand(
    api: ApiClient, enterprise: Account, sponsor: User, agent: User
) -> None:
    reply = api.post_json(
        "/api/v1/accounts",
        {"external_id": "acc-globex", "executive_sponsor_email": "VP@example.com"},
    )
    assert reply.status_code in (200, 201) and reply.json()["executive_sponsor_email"] == (
        "vp@example.com"
    )
    bad = api.post_json(
        "/api/v1/accounts", {"external_id": "x", "executive_sponsor_email": "who@example.com"}
    )
    assert bad.status_code == 422 and "executive_sponsor_email" in str(bad.json())
    report = imports.import_text(
        "accounts", "external_id,name,executive_sponsor_email\na9,Nine,nobody@example.com\n"
    )
    assert [(p.row, p.column) for p in report.problems] == [(2, "executive_sponsor_email")]
    imports.import_text(
        "accounts", "external_id,name,executive_sponsor_email\na9,Nine,vp@example.com\n"
    )
    assert Account.objects.get(external_id="a9").executive_sponsor == sponsor
    case = open_case(api, Account.objects.get(external_id="a9"), 3)
    added = api.post_json(f"/api/v1/cases/{case.pk}/watchers", {"email": agent.email})
    assert added.status_code == 200 and added.json()["watchers"] == [agent.email]
    unknown = api.post_json(f"/api/v1/cases/{case.pk}/watchers", {"email": "no@example.com"})
    assert unknown.status_code == 422
