"""Erasing a person removes every copy of their personal data and keeps only a hash of
their address, so they are never surveyed again."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from closeloop.delivery.models import Delivery
from closeloop.loop.inbound import receive
from closeloop.loop.models import FollowUpCase
from closeloop.surveys import sending
from closeloop.surveys.models import Account, Person, Suppression, Survey, SurveyRequest
from closeloop.team.models import User
from closeloop.themes.models import ThemeExample

from .conftest import ApiClient, answer, drain
from .loopback import SmtpServer

pytestmark = pytest.mark.django_db

EMAIL = "erase.me@customer.example"
COMMENT = "Quartzwhistle exports are broken again"  # a word found nowhere else


def everything() -> str:
    """The whole database as text, the way a person auditing an erasure would look."""
    out = io.StringIO()
    call_command(
        "dumpdata",
        exclude=["contenttypes", "auth.permission", "sessions", "admin.logentry"],
        stdout=out,
    )
    return out.getvalue().lower()


def a_customer_everywhere(api: ApiClient, account: Account, smtp: SmtpServer) -> FollowUpCase:
    body = answer(EMAIL, 3, comment=COMMENT) | {
        "person": {"email": EMAIL, "name": "Erin Rase", "account": {"external_id": "acc-initech"}}
    }
    assert api.post_json("/api/v1/responses", body, HTTP_IDEMPOTENCY_KEY="e1").status_code == 201
    drain()  # outreach and the owner's alert (quoting the comment) go out
    case = FollowUpCase.objects.get(person__email=EMAIL)
    reply = (
        f"From: Erin <{EMAIL}>\r\nTo: {case.reply_address}\r\nSubject: Re: your score\r\n\r\n"
        "Quartzwhistle still fails for me"
    ).encode()
    receive(reply, "http")
    fix = api.post_json(f"/api/v1/cases/{case.pk}/themes", {"add": ["bugs"]})
    assert fix.status_code == 200, fix.content
    assert ThemeExample.objects.filter(text__icontains="quartzwhistle").exists()
    return case


def test_it_erases_every_copy_of_a_persons_data(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    a_customer_everywhere(api, smb, smtp)
    api.post_json("/api/v1/responses", answer("stays@customer.example", 9, comment="Fine"))
    before = everything()
    assert EMAIL in before and "quartzwhistle" in before
    person = Person.objects.get(email=EMAIL)
    reply = api.delete(f"/api/v1/people/{person.pk}", HTTP_AUTHORIZATION=f"Bearer {api.key}")
    assert reply.status_code == 200, reply.content
    erased = reply.json()["erased"]
    assert erased["people"] == 1 and erased["answers"] == 1 and erased["cases"] == 1
    assert erased["deliveries"] >= 2 and erased["inbound messages"] == 1
    assert erased["theme examples"] == 1 and erased["API replies"] == 1
    after = everything()
    assert EMAIL not in after and "erin" not in after and "quartzwhistle" not in after
    assert "stays@customer.example" in after  # nobody else was touched
    assert Suppression.objects.filter(address_hash=Suppression.digest(EMAIL)).exists()


def test_it_never_surveys_an_erased_address_again(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    a_customer_everywhere(api, smb, smtp)
    person = Person.objects.get(email=EMAIL)
    api.delete(f"/api/v1/people/{person.pk}", HTTP_AUTHORIZATION=f"Bearer {api.key}")
    # A later import brings the address back: the person exists again, but is not surveyed.
    back = Person.objects.create(email=EMAIL.upper())
    (request,) = sending.schedule([back], Survey.default())
    assert request.status == SurveyRequest.Status.SKIPPED
    assert "erased" in request.status_reason
    drain()
    assert not Delivery.objects.filter(to__iexact=EMAIL, purpose="survey").exists()


def test_it_erases_through_delighteds_people_endpoint(
    api: ApiClient, smb: Account, smtp: SmtpServer
) -> None:
    a_customer_everywhere(api, smb, smtp)
    basic = base64.b64encode(f"{api.key}:".encode()).decode()
    gone = Client().delete(f"/v1/people/email:{EMAIL}", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert gone.status_code == 202, gone.content
    after = everything()
    assert EMAIL not in after and "quartzwhistle" not in after


def test_it_lets_an_admin_erase_from_the_case_page_and_nobody_else(
    api: ApiClient, smb: Account, smtp: SmtpServer, admin_user: User, agent: User
) -> None:
    case = a_customer_everywhere(api, smb, smtp)
    client = Client()
    client.force_login(agent)
    assert client.post(f"/cases/{case.pk}/erase", {"confirm": "yes"}).status_code == 403
    client.force_login(admin_user)
    unconfirmed = client.post(f"/cases/{case.pk}/erase", {})
    assert unconfirmed.status_code == 302 and Person.objects.filter(email=EMAIL).exists()
    done = client.post(f"/cases/{case.pk}/erase", {"confirm": "yes"}, follow=True)
    assert b"Erased erase.me@customer.example" in done.content
    assert EMAIL not in everything()


def test_it_404s_erasing_someone_unknown(api: ApiClient, settings: Any) -> None:
    reply = api.delete("/api/v1/people/999999", HTTP_AUTHORIZATION=f"Bearer {api.key}")
    assert reply.status_code == 404
