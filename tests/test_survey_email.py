"""Email surveys: a 0–10 scale in the mail, answered by following its links."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.utils import timezone

from closeloop.loop.models import FollowUpCase
from closeloop.surveys import sending
from closeloop.surveys.models import (
    Account,
    LinkHit,
    Person,
    Response,
    ResponseEdit,
    Survey,
    SurveyRequest,
)

from .conftest import click_score, drain
from .loopback import SmtpServer

pytestmark = pytest.mark.django_db


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML bodies of a received survey email."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def score_links(html: str) -> dict[int, str]:
    found = re.findall(r'href="(http://[^"]+/s/a/[^"]+/)"[^>]*>(\d+)</a>', html)
    return {int(n): url for url, n in found}


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def surveyed(smtp: SmtpServer, email: str = "pat@example.com", **person: object) -> EmailMessage:
    """Schedule one person into the default survey, run the worker, return their email."""
    someone = Person.objects.create(email=email, **person)
    sending.schedule([someone], Survey.default())
    drain()
    (message,) = smtp.inbox.to(email)
    return message


def test_it_sends_the_question_with_eleven_signed_numbers_and_a_text_part(smtp: SmtpServer) -> None:
    message = surveyed(smtp)
    text, html = parts(message)
    links = score_links(html)
    assert sorted(links) == list(range(11))
    assert "How likely are you to recommend" in message["Subject"]
    assert "0 (Not at all likely): http" in text and "10 (Extremely likely): http" in text
    assert "/u/" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    request = SurveyRequest.objects.get()
    assert request.status == SurveyRequest.Status.SENT and request.sent_at is not None


def test_it_records_the_score_a_person_clicks_and_opens_the_comment_page(
    smtp: SmtpServer, client: Client
) -> None:
    links = score_links(parts(surveyed(smtp))[1])
    landed = client.get(path_of(links[8]))
    assert landed.status_code == 200
    assert b'value="8" checked' in landed.content and b"You chose 8" in landed.content
    assert not Response.objects.exists()  # opening a link saves nothing (mail scanners)
    saved = click_score(client, path_of(links[8]))
    assert saved.status_code == 200
    response = Response.objects.get()
    assert (response.score, response.source) == (8, Response.Source.EMAIL)
    assert SurveyRequest.objects.get().status == SurveyRequest.Status.ANSWERED
    again = client.get(path_of(links[8]))
    assert b'value="8" checked' in again.content and b"Thank you" in again.content


def test_it_records_nothing_when_a_scanner_opens_every_number(
    smtp: SmtpServer, client: Client
) -> None:
    links = score_links(parts(surveyed(smtp))[1])
    for n in range(11):  # a mail scanner opening each link, scripts off
        assert client.get(path_of(links[n])).status_code == 200
    assert not Response.objects.exists()
    # One that runs the page's script too: its saves are refused, the answer untouched.
    refused = click_score(client, path_of(links[0]))
    assert refused.status_code == 409 and b"scanner" in refused.content
    assert not Response.objects.exists()
    assert not FollowUpCase.objects.exists()


def test_it_lets_a_reader_without_javascript_confirm_with_the_button(
    smtp: SmtpServer, client: Client
) -> None:
    links = score_links(parts(surveyed(smtp))[1])
    landed = client.get(path_of(links[3]))
    action = re.search(r'<form method="post" action="([^"]+)"', landed.content.decode())
    assert action is not None
    sent = client.post(action.group(1), {"score": "3", "comment": ""})
    assert sent.status_code == 200 and Response.objects.get().score == 3


def test_it_keeps_history_when_a_second_click_changes_the_score(
    smtp: SmtpServer, client: Client, enterprise: Account
) -> None:
    links = score_links(parts(surveyed(smtp, account=enterprise))[1])
    click_score(client, path_of(links[9]))
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        click_score(client, path_of(links[2]))
        click_score(client, path_of(links[2]))  # a replay changes nothing
    response = Response.objects.get()
    assert response.score == 2
    (edit,) = ResponseEdit.objects.all()
    assert (edit.score_before, edit.score_after, edit.via) == (9, 2, "email")
    # 9 opened no case; the change to 2 is a detractor and gets one.
    assert FollowUpCase.objects.get().score == 2


def test_it_saves_a_comment_from_the_page_and_names_a_missing_score(
    smtp: SmtpServer, client: Client
) -> None:
    links = score_links(parts(surveyed(smtp))[1])
    landed = client.get(path_of(links[6])).content.decode()
    action = re.search(r'<form method="post" action="([^"]+)"', landed)
    assert action is not None
    page = action.group(1)
    bad = client.post(page, {"score": "11", "comment": "Too slow"})
    assert bad.status_code == 422 and b"choose a number from 0 to 10" in bad.content
    assert b"Too slow" in bad.content  # what they typed is kept
    good = client.post(page, {"score": "6", "comment": "Exports are too slow"})
    assert good.status_code == 200
    assert Response.objects.get().comment == "Exports are too slow"


def test_it_refuses_tampered_and_expired_links(smtp: SmtpServer, client: Client) -> None:
    url = path_of(score_links(parts(surveyed(smtp))[1])[7])
    head, _, signature = url.rstrip("/").rpartition(":")
    forged = head.replace(".7:", ".1:") + ":" + signature + "/"
    assert client.get(forged).status_code == 400
    assert client.get(url.replace("/s/a/", "/s/a/x")).status_code == 400
    later = timezone.now() + timedelta(days=Survey.default().link_days + 1)
    with time_machine.travel(later, tick=False):
        gone = client.get(url)
    assert gone.status_code == 410 and b"expired" in gone.content
    assert not Response.objects.exists()


def test_it_does_not_answer_on_a_link_checkers_head_request(
    smtp: SmtpServer, client: Client
) -> None:
    url = path_of(score_links(parts(surveyed(smtp))[1])[0])
    assert client.head(url).status_code == 200
    assert not Response.objects.exists() and not LinkHit.objects.exists()


def test_it_marks_the_request_opened_by_the_pixel(smtp: SmtpServer, client: Client) -> None:
    html = parts(surveyed(smtp))[1]
    pixel = re.search(r'<img src="(http://[^"]+\.gif)"', html)
    assert pixel is not None
    reply = client.get(path_of(pixel.group(1)))
    assert reply["Content-Type"] == "image/gif"
    assert SurveyRequest.objects.get().opened_at is not None


def test_it_speaks_the_persons_language(smtp: SmtpServer) -> None:
    text, _ = parts(surveyed(smtp, locale="de-AT"))
    assert "Klicken Sie auf eine Zahl" in text


def test_it_unsubscribes_with_one_click_and_cancels_what_is_scheduled(
    smtp: SmtpServer, client: Client
) -> None:
    message = surveyed(smtp)
    person = Person.objects.get()
    later = SurveyRequest.objects.create(
        person=person, survey=Survey.default(), scheduled_at=timezone.now() + timedelta(days=40)
    )
    target = path_of(message["List-Unsubscribe"].strip("<>"))
    # RFC 8058: the mail provider POSTs this body, without cookies or CSRF token.
    reply = Client(enforce_csrf_checks=True).post(
        target, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert reply.status_code == 200
    person.refresh_from_db()
    assert person.unsubscribed_at is not None
    later.refresh_from_db()
    assert later.status == SurveyRequest.Status.CANCELLED
    # The page asks first on a plain visit, and a forged link is refused.
    assert b"Stop receiving surveys" in client.get(target).content
    assert client.get(target.replace("/u/", "/u/x")).status_code == 400


def test_it_skips_unsubscribed_bounced_and_throttled_people_and_says_why(
    smtp: SmtpServer,
) -> None:
    survey = Survey.default()
    now = timezone.now()
    gone = Person.objects.create(email="gone@example.com", unsubscribed_at=now)
    bounced = Person.objects.create(email="bounced@example.com", bounced_at=now)
    recent = Person.objects.create(email="recent@example.com")
    SurveyRequest.objects.create(
        person=recent,
        survey=survey,
        status=SurveyRequest.Status.SENT,
        sent_at=now - timedelta(days=10),
    )
    fine = Person.objects.create(email="fine@example.com")
    made = sending.schedule([gone, bounced, recent, fine], survey)
    reasons = {r.person.email: r.status_reason for r in made}
    assert reasons["gone@example.com"] == "unsubscribed"
    assert reasons["bounced@example.com"] == "bounced"
    assert reasons["recent@example.com"].startswith("throttled")
    assert reasons["fine@example.com"] == ""
    drain()
    assert [str(m["To"]) for m in smtp.inbox.messages] == ["fine@example.com"]


def test_it_rechecks_the_throttle_when_a_scheduled_survey_falls_due(smtp: SmtpServer) -> None:
    survey = Survey.default()
    person = Person.objects.create(email="twice@example.com")
    sending.schedule([person], survey, at=timezone.now() + timedelta(days=2))
    # Meanwhile another survey reached them.
    SurveyRequest.objects.create(
        person=person, survey=survey, status=SurveyRequest.Status.SENT, sent_at=timezone.now()
    )
    with time_machine.travel(timezone.now() + timedelta(days=3), tick=False):
        drain()
    assert smtp.inbox.messages == []
    skipped = SurveyRequest.objects.get(status=SurveyRequest.Status.SKIPPED)
    assert skipped.status_reason.startswith("throttled")


def test_it_marks_a_person_bounced_when_the_server_refuses_the_address(
    smtp: SmtpServer,
) -> None:
    smtp.inbox.refuse.add("nobody@example.com")
    person = Person.objects.create(email="nobody@example.com")
    sending.schedule([person], Survey.default())
    drain()
    person.refresh_from_db()
    assert person.bounced_at is not None
    request = SurveyRequest.objects.get()
    assert request.status == SurveyRequest.Status.FAILED and "550" in request.status_reason


def test_it_reminds_once_after_the_surveys_wait(smtp: SmtpServer, client: Client) -> None:
    surveyed(smtp)
    wait = Survey.default().reminder_days
    with time_machine.travel(timezone.now() + timedelta(days=wait - 1), tick=False):
        drain()
    assert len(smtp.inbox.messages) == 1
    with time_machine.travel(timezone.now() + timedelta(days=wait, hours=1), tick=False):
        drain()
    with time_machine.travel(timezone.now() + timedelta(days=wait + 5), tick=False):
        drain()
    _, reminder = smtp.inbox.messages
    assert str(reminder["Subject"]).startswith("Reminder: ")
    # The reminder's links answer the same request.
    click_score(client, path_of(score_links(parts(reminder)[1])[10]))
    assert SurveyRequest.objects.get().status == SurveyRequest.Status.ANSWERED


def test_it_does_not_remind_people_who_answered(smtp: SmtpServer, client: Client) -> None:
    click_score(client, path_of(score_links(parts(surveyed(smtp))[1])[9]))
    with time_machine.travel(timezone.now() + timedelta(days=10), tick=False):
        drain()
    subjects = [str(m["Subject"]) for m in smtp.inbox.messages]
    assert not [s for s in subjects if s.startswith("Reminder")], subjects


def test_it_spreads_a_wave_evenly_over_days(db: object) -> None:
    people = [Person.objects.create(email=f"p{i}@example.com") for i in range(4)]
    start = timezone.now()
    made = sending.schedule(people, Survey.default(), at=start, spread_days=2)
    offsets = [(r.scheduled_at - start).total_seconds() / 3600 for r in made]
    assert offsets == [0, 12, 24, 36]


def test_it_keeps_a_link_survey_answer_with_the_query_string_as_properties(
    client: Client, db: object
) -> None:
    Survey.default()
    page = client.get("/l/nps/?plan=pro&page=billing&score=4")
    assert page.status_code == 200 and b'value="4" checked' in page.content
    saved = client.post("/l/nps/?plan=pro&page=billing", {"score": "4", "comment": "meh"})
    assert saved.status_code == 200
    response = Response.objects.get()
    assert response.source == Response.Source.LINK
    assert (response.properties["plan"], response.properties["page"]) == ("pro", "billing")
    assert response.person.external_id.startswith("anonymous-")
    # The thank-you page's form changes that answer instead of adding one.
    token = re.search(rb'name="r" value="([^"]+)"', saved.content)
    assert token is not None
    client.post("/l/nps/", {"score": "7", "comment": "better", "r": token.group(1).decode()})
    assert Response.objects.get().score == 7


def test_it_identifies_a_link_survey_by_a_signed_token(client: Client, db: object) -> None:
    from closeloop.web.survey_pages import person_token

    Survey.default()
    person = Person.objects.create(email="inapp@example.com")
    client.post(f"/l/nps/?t={person_token(person)}", {"score": "10"})
    assert Response.objects.get().person == person
    forged = signing.dumps({"p": person.pk}, salt="another")
    assert client.get(f"/l/nps/?t={forged}").status_code == 400


def test_it_names_what_is_wrong_with_a_link_surveys_input(client: Client, db: object) -> None:
    Survey.default()
    crowded = "&".join(f"p{i}=x" for i in range(31))
    refused = client.get(f"/l/nps/?{crowded}")
    assert refused.status_code == 400 and b"too many properties" in refused.content
    long_name = client.get(f"/l/nps/?{'k' * 101}=v")
    assert long_name.status_code == 400 and b"property names are at most 100" in long_name.content
    no_score = client.post("/l/nps/", {"score": "ten", "comment": "hm"})
    assert no_score.status_code == 422 and b"choose a number from 0 to 10" in no_score.content
    assert client.get("/l/unknown-survey/").status_code == 404
    assert not Response.objects.exists() and not Person.objects.exists()


def test_it_stops_every_queued_email_to_a_person_who_unsubscribes(smtp: SmtpServer) -> None:
    from closeloop.delivery.models import Delivery
    from closeloop.loop.consent import unsubscribe_person

    message = surveyed(smtp)
    person = Person.objects.get()
    sent = Delivery.objects.get(purpose=Delivery.Purpose.SURVEY)
    # A reminder waiting in retry after a refused attempt, and an outreach email queued.
    waiting = Delivery.objects.create(
        kind="email",
        purpose="reminder",
        to=person.email,
        subject="Reminder",
        body="…",
        status="pending",
        attempts=2,
        last_error="451 try later",
        survey_request=sent.survey_request,
    )
    queued = Delivery.objects.create(
        kind="email", purpose="outreach", to=person.email, subject="About your 3", body="…"
    )
    other = Delivery.objects.create(
        kind="email", purpose="outreach", to="someone@else.example", subject="Hi", body="…"
    )
    assert message is not None and unsubscribe_person(person)
    drain()
    for row in (waiting, queued):
        row.refresh_from_db()
        assert row.status == "failed" and "unsubscribed" in row.last_error
    other.refresh_from_db()
    sent.refresh_from_db()
    assert other.status == "sent" and sent.status == "sent"  # what already went stays as it was
    assert [m["To"] for m in smtp.inbox.messages[1:]] == ["someone@else.example"]


def test_it_sends_a_survey_whose_question_is_longer_than_a_subject_can_be(
    smtp: SmtpServer,
) -> None:
    from closeloop.delivery.models import Delivery

    survey = Survey.default()
    survey.question = "How likely are you to recommend {product} " + "and its parts " * 30 + "?"
    survey.save()
    message = surveyed(smtp)
    delivery = Delivery.objects.get(purpose=Delivery.Purpose.SURVEY)
    assert delivery.status == "sent" and len(delivery.subject) == 300
    assert delivery.subject.endswith("…") and str(message["Subject"]).startswith("How likely")


def test_it_never_lets_answer_properties_overwrite_the_account_facts(
    client: Client, db: object
) -> None:
    from closeloop.loop.intake import record_responses
    from closeloop.surveys.ingest import PersonData, ResponseData
    from closeloop.web.survey_pages import person_token

    Survey.default()
    account = Account.objects.create(name="Initech", external_id="acc-i", tier="smb")
    person = Person.objects.create(email="inapp@example.com", account=account)
    forged = client.get(f"/l/nps/?t={person_token(person)}&account.tier=enterprise")
    assert forged.status_code == 400 and b"account.tier" in forged.content
    # Any other way in (the API's person_properties, Delighted's) keeps the real facts too.
    data = PersonData.of(person)
    answer = ResponseData(
        person=data, score=3, properties={"account.tier": "enterprise", "plan": "pro"}
    )
    (outcome,) = record_responses([answer])
    assert outcome.response.properties["account.tier"] == "smb"
    assert outcome.response.properties["plan"] == "pro"


def test_it_limits_anonymous_link_answers_per_address_and_survey(db: object, settings: Any) -> None:
    settings.LINK_SURVEY_ANSWERS_PER_MINUTE = 3
    Survey.default()
    ours, theirs = Client(REMOTE_ADDR="203.0.113.9"), Client(REMOTE_ADDR="198.51.100.4")
    for _ in range(3):
        assert ours.post("/l/nps/", {"score": "9"}).status_code == 200
    refused = ours.post("/l/nps/", {"score": "0", "comment": "spam"})
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert Response.objects.count() == 3 and not Response.objects.filter(score=0).exists()
    # Another address, and the same one a minute later, still answer.
    assert theirs.post("/l/nps/", {"score": "8"}).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        assert ours.post("/l/nps/", {"score": "7"}).status_code == 200
    # A forwarded address is not believed without a proxy in front: naming a new one
    # each time does not escape the limit.
    for n in range(4):
        spoofed = Client(REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}")
        status = spoofed.post("/l/nps/", {"score": "9"}).status_code
    assert status == 429


def test_it_reads_the_client_address_behind_a_counted_proxy(settings: Any) -> None:
    from django.test import RequestFactory

    from closeloop.core.clients import client_address

    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9"
    )
    assert client_address(request) == "10.0.0.2"
    settings.WEB_PROXY_COUNT = 1
    assert client_address(request) == "203.0.113.9"  # what our proxy saw, not what was sent


def test_it_sends_the_rest_of_a_batch_when_one_invitation_cannot_be_written(
    smtp: SmtpServer,
) -> None:
    people = [Person.objects.create(email=f"p{i}@example.com") for i in range(5)]
    made = sending.schedule(people, Survey.default())
    # Options an older version stored as a list, not the object every reader expects.
    SurveyRequest.objects.filter(pk=made[2].pk).update(options=["subject", "x"])
    drain()
    assert len(smtp.inbox.messages) == 4
    bad = SurveyRequest.objects.get(pk=made[2].pk)
    assert bad.status == SurveyRequest.Status.FAILED and "could not be written" in bad.status_reason
    assert SurveyRequest.objects.filter(status=SurveyRequest.Status.SENT).count() == 4


def test_it_forgets_link_hits_after_an_hour_and_uploads_after_a_day(db: object) -> None:
    from closeloop.surveys.models import Upload

    survey = Survey.default()
    LinkHit.objects.create(kind=LinkHit.Kind.ANSWER, survey=survey, client="a")
    Upload.objects.create(name="w.csv", data=b"email\n", size=6)
    with time_machine.travel(timezone.now() + timedelta(minutes=59), tick=False):
        drain()
    assert LinkHit.objects.count() == 1 and Upload.objects.count() == 1
    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        drain()
    assert LinkHit.objects.count() == 0 and Upload.objects.count() == 0
