"""Closing the loop: a fix ships and every customer who raised it hears so, personally."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from closeloop.delivery.models import Delivery
from closeloop.loop.models import Activity, Announcement, FollowUpCase
from closeloop.surveys.models import Account, Person
from closeloop.team.models import User

from .conftest import ApiClient, answer_at, drain, open_case
from .loopback import SmtpServer

pytestmark = pytest.mark.django_db


def tagged(api: ApiClient, account: Account, email: str, comment: str, tags: list[str]) -> Any:
    return open_case(
        api,
        account,
        3,
        email,
        name=email.split("@")[0].title() + " Lee",
        comment=comment,
        tags=tags,
    )


def field_of(reply: Any) -> str:
    """The input a 422 names."""
    return str(reply.json()["detail"][0]["loc"][-1])


def draft(api: ApiClient, **body: Any) -> dict[str, Any]:
    reply = api.post_json(
        "/api/v1/announcements", {"title": "CSV exports finish in seconds", **body}
    )
    assert reply.status_code == 201, reply.content
    result: dict[str, Any] = reply.json()
    return result


def test_it_tells_each_customer_of_a_tag_what_they_said_and_what_shipped(
    api: ApiClient, smb: Account, agent: User, smtp: SmtpServer
) -> None:
    pat = tagged(api, smb, "pat@example.com", "Exports keep timing out", ["exports"])
    tagged(api, smb, "kim@example.com", "Billing page is confusing", ["billing"])
    drain()
    before = len(smtp.inbox.messages)
    a = draft(api, tag="Exports", details="Large exports now stream as they are built.")
    assert a["case_ids"] == [pat.pk] and a["status"] == "draft"
    assert 'you told us "Exports keep timing out"' in a["preview"]["body"]
    sent = api.post_json(f"/api/v1/announcements/{a['id']}/send", {})
    assert sent.status_code == 202 and sent.json()["emailed"] == 1
    drain()
    new = smtp.inbox.messages[before:]
    (mail,) = [m for m in new if m["To"] == "pat@example.com"]
    assert mail["From"] == f"Alex <{agent.email}>"
    assert mail["Reply-To"] == pat.reply_address
    assert mail["Subject"] == "You told us, we fixed it: CSV exports finish in seconds"
    text = mail.get_content()
    assert "Hi Pat," in text and '"Exports keep timing out"' in text
    assert "Large exports now stream" in text and "{" not in text
    assert not [m for m in new if m["To"] == "kim@example.com"]
    kinds = list(pat.activities.values_list("kind", flat=True))
    assert Activity.Kind.FIX_SHIPPED in kinds and Activity.Kind.EMAIL_SENT in kinds
    assert api.get_json(f"/api/v1/announcements/{a['id']}").json()["deliveries"]["sent"] == 1


def test_it_sends_to_hand_picked_cases_once_per_person_and_can_resolve_them(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    first = tagged(api, smb, "pat@example.com", "Slow", [])
    first.close(FollowUpCase.Resolution.CANT_FIX, "roadmap", "told them it is planned", None)
    assert (
        api.post_json("/api/v1/responses", answer_at(smb, 2, comment="Still slow")).status_code
        == 201
    )
    second = FollowUpCase.objects.filter(person__email="pat@example.com").latest("created_at")
    assert second != first
    other = tagged(api, smb, "kim@example.com", "", [])
    a = draft(api, case_ids=[first.pk, second.pk, other.pk], resolve=True)
    api.post_json(f"/api/v1/announcements/{a['id']}/send", {})
    drain()
    fixed = [m for m in smtp.inbox.to("pat@example.com") if "we fixed it" in m["Subject"]]
    assert len(fixed) == 1  # one email for the person's two cases
    fix_mails = Delivery.objects.filter(purpose="fix_shipped")
    assert sorted(fix_mails.values_list("to", flat=True)) == ["kim@example.com", "pat@example.com"]
    kim = fix_mails.get(to="kim@example.com")
    assert "you gave us a 3 out of 10" in kim.body
    second.refresh_from_db()
    assert second.status == "closed" and second.resolution == "resolved"
    first.refresh_from_db()
    assert first.resolution == FollowUpCase.Resolution.CANT_FIX  # closed cases stay as they were
    assert first.activities.filter(kind=Activity.Kind.FIX_SHIPPED).exists()


def test_it_records_who_could_not_be_told(api: ApiClient, smb: Account) -> None:
    case = tagged(api, smb, "gone@example.com", "Slow", ["speed"])
    Person.objects.filter(pk=case.person_id).update(unsubscribed_at=case.created_at)
    a = draft(api, tag="speed")
    body = api.post_json(f"/api/v1/announcements/{a['id']}/send", {}).json()
    assert body["emailed"] == 0 and body["not_emailed"] == 1
    failed = case.activities.get(kind=Activity.Kind.DELIVERY_FAILED)
    assert "unsubscribed" in failed.text


def test_it_refuses_bad_drafts_and_second_sends_by_field(api: ApiClient, smb: Account) -> None:
    case = tagged(api, smb, "pat@example.com", "Slow", [])
    bad = api.post_json("/api/v1/announcements", {"title": "x", "body": "Hi {nickname}"})
    assert bad.status_code == 422 and field_of(bad) == "body"
    missing = api.post_json("/api/v1/announcements", {"title": "x", "case_ids": [999999]})
    assert missing.status_code == 422 and field_of(missing) == "case_ids"
    assert not Announcement.objects.exists()
    empty = draft(api)
    reply = api.post_json(f"/api/v1/announcements/{empty['id']}/send", {})
    assert reply.status_code == 422 and field_of(reply) == "case_ids"
    a = draft(api, case_ids=[case.pk])
    assert api.post_json(f"/api/v1/announcements/{a['id']}/send", {}).status_code == 202
    again = api.post_json(f"/api/v1/announcements/{a['id']}/send", {})
    assert again.status_code == 422 and field_of(again) == "status"
    assert Delivery.objects.filter(purpose="fix_shipped").count() == 1
    change = api.client_put(f"/api/v1/announcements/{a['id']}/cases", {"case_ids": []})
    assert change.status_code == 422


def test_it_drafts_previews_and_sends_an_announcement_from_the_pages(
    api: ApiClient, smb: Account, agent: User, viewer: User
) -> None:
    pat = tagged(api, smb, "pat@example.com", "Exports keep timing out", ["exports"])
    kim = tagged(api, smb, "kim@example.com", "Too slow", [])
    client = Client()
    assert client.login(username=agent.username, password="pw-alex-123")
    bad = client.post("/announcements/", {"title": "", "tag": "exports"})
    assert bad.status_code == 422 and "title: say what shipped" in bad.content.decode()
    made = client.post("/announcements/", {"title": "Exports stream", "tag": "exports"})
    a = Announcement.objects.get()
    assert made["Location"] == f"/announcements/{a.pk}/"
    page = client.get(made["Location"]).content.decode()
    assert "Exports keep timing out" in page and "Send to 1 customer(s)" in page
    client.post(made["Location"], {"action": "add", "case_ids": f"#{kim.pk}"})
    assert set(a.cases.all()) == {pat, kim}
    wrong = client.post(made["Location"], {"action": "add", "case_ids": "twelve"}, follow=True)
    assert "case_ids: &#x27;twelve&#x27; is not a case number" in wrong.content.decode()
    client.post(made["Location"], {"action": "remove", "case": [str(kim.pk)]})
    assert list(a.cases.all()) == [pat]
    viewer_client = Client()
    assert viewer_client.login(username=viewer.username, password="pw-vic-123")
    assert viewer_client.post(made["Location"], {"action": "send"}).status_code == 403
    client.post(made["Location"], {"action": "send"})
    a.refresh_from_db()
    assert a.status == "sent" and a.emailed == 1
    listing = client.get("/announcements/").content.decode()
    assert "Exports stream" in listing and "1 emailed" in listing


def test_it_adds_a_case_to_a_draft_from_the_case_page(
    api: ApiClient, smb: Account, agent: User
) -> None:
    case = tagged(api, smb, "pat@example.com", "Slow", [])
    a = draft(api)
    client = Client()
    assert client.login(username=agent.username, password="pw-alex-123")
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert "Add to announcement" in page and "CSV exports finish in seconds" in page
    client.post(f"/cases/{case.pk}/act", {"action": "announce", "announcement": str(a["id"])})
    assert list(Announcement.objects.get().cases.all()) == [case]
    refused = client.post(
        f"/cases/{case.pk}/act", {"action": "announce", "announcement": "x"}, follow=True
    )
    assert "announcement: no such draft announcement" in refused.content.decode()


def test_it_chooses_every_case_of_a_theme_and_quotes_what_they_said_about_it(
    api: ApiClient, smb: Account, agent: User
) -> None:
    from closeloop.themes import learning
    from closeloop.themes.models import Theme

    billing = Theme.objects.get(slug="billing")
    pat = tagged(api, smb, "pat@example.com", "We were invoiced twice", [])
    kim = tagged(api, smb, "kim@example.com", "The invoice has no PO number", [])
    tagged(api, smb, "lee@example.com", "Pages are slow", [])
    for case in (pat, kim):
        learning.correct(case.response, [billing], via="test")
    a = draft(api, theme="billing")
    assert a["theme"] == "billing" and sorted(a["case_ids"]) == sorted([pat.pk, kim.pk])
    assert "you told us" in a["preview"]["body"]
    assert field_of(api.post_json("/api/v1/announcements", {"title": "X", "theme": "nope"})) == (
        "theme"
    )
    # A case whose answer gets the theme later is added on request.
    later = tagged(api, smb, "ann@example.com", "Card charged twice", [])
    learning.correct(later.response, [billing], via="test")
    reply = api.client_put(f"/api/v1/announcements/{a['id']}/cases", {"by_theme": True})
    assert later.pk in reply.json()["case_ids"]

    client = Client()
    assert client.login(username=agent.username, password="pw-alex-123")
    form = client.get("/announcements/", {"theme": "billing"}).content.decode()
    assert '<option value="billing" selected>' in form
    made = client.post("/announcements/", {"title": "Invoices fixed", "theme": "billing"})
    page = client.get(made["Location"]).content.decode()
    assert "theme <strong>Billing</strong> (3 case(s) have it)" in page
    assert "Send to 3 customer(s)" in page
