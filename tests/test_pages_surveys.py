"""Survey pages: create a survey, preview it, add people in a wave, watch it, see silence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from closeloop.surveys.models import Account, Person, Survey, SurveyRequest, Wave
from closeloop.team.models import User

from .conftest import drain
from .loopback import SmtpServer

pytestmark = pytest.mark.django_db


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def new_survey(**fields: Any) -> dict[str, Any]:
    body = {
        "name": "Onboarding NPS",
        "slug": "onboarding",
        "question": "How likely are you to recommend {product} to a colleague?",
        "product_name": "Acme Cloud",
        "subject": "",
        "intro": "",
        "thank_you": "",
        "throttle_days": 30,
        "reminder_days": 3,
        "link_days": 30,
    }
    body.update(fields)
    return body


def test_it_creates_a_survey_from_the_page(manager: User) -> None:
    reply = logged_in(manager).post("/surveys/", new_survey())
    assert reply.status_code == 302 and reply["Location"] == "/surveys/onboarding/"
    survey = Survey.objects.get(slug="onboarding")
    assert survey.question_text() == "How likely are you to recommend Acme Cloud to a colleague?"


def test_it_names_the_field_of_a_bad_survey_and_saves_nothing(manager: User) -> None:
    reply = logged_in(manager).post(
        "/surveys/", new_survey(slug="no spaces", throttle_days=3, subject="two\nlines")
    )
    assert reply.status_code == 422
    body = reply.content.decode()
    assert "slug:" in body and "throttle_days:" in body and "subject:" in body
    assert not Survey.objects.filter(name="Onboarding NPS").exists()


def test_it_lets_only_admins_and_managers_change_surveys(agent: User, viewer: User) -> None:
    for user in (agent, viewer):
        assert logged_in(user).post("/surveys/", new_survey()).status_code == 403
        assert logged_in(user).get("/surveys/").status_code == 200
    assert not Survey.objects.filter(slug="onboarding").exists()


def test_it_previews_the_email_and_page_in_a_language_with_inert_links(manager: User) -> None:
    Survey.objects.create(**new_survey(throttle_days=30))
    client = logged_in(manager)
    email = client.get("/surveys/onboarding/preview/email/?lang=de")
    assert email.status_code == 200 and email["X-Frame-Options"] == "SAMEORIGIN"
    html = email.content.decode()
    assert "Acme Cloud" in html and "Überhaupt nicht wahrscheinlich" in html
    assert "/s/a/" not in html and "/s/o/" not in html
    text = client.get("/surveys/onboarding/preview/text/").content.decode()
    assert text.startswith("Subject: How likely") and "10 (Extremely likely)" in text
    page = client.get("/surveys/onboarding/preview/page/").content.decode()
    assert 'name="score"' in page and "Acme Cloud" in page
    overview = client.get("/surveys/onboarding/?lang=fr").content.decode()
    assert 'preview/email/?lang=fr"' in overview


def test_it_checks_who_a_segment_reaches_then_schedules_the_wave(
    manager: User, enterprise: Account, smb: Account
) -> None:
    Person.objects.create(email="a@globex.example", account=enterprise)
    Person.objects.create(email="b@globex.example", account=enterprise, bounced_at=timezone.now())
    Person.objects.create(external_id="no-email", account=enterprise)
    Person.objects.create(email="c@initech.example", account=smb)
    Survey.default()
    client = logged_in(manager)
    form = {"source": "segment", "tier": "Enterprise", "spread_days": 0, "action": "check"}
    check = client.post("/surveys/nps/waves/new/", form)
    assert check.status_code == 200
    body = check.content.decode()
    assert "would reach 2 people" in body and "bounced" in body
    assert not SurveyRequest.objects.exists() and not Wave.objects.exists()

    done = client.post("/surveys/nps/waves/new/", {**form, "action": "schedule"})
    wave = Wave.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/surveys/nps/waves/{wave.pk}/"
    assert wave.name == "tier Enterprise" and wave.created_by == manager
    statuses = dict(wave.requests.values_list("person__email", "status"))
    assert statuses == {"a@globex.example": "scheduled", "b@globex.example": "skipped"}


def test_it_adds_people_from_a_csv_file_checked_once(manager: User) -> None:
    Survey.default()
    client = logged_in(manager)
    csv = b"email,name,locale\nnew@acme.example,Nia,de\nold@acme.example,Olu,en\n"
    Person.objects.create(email="old@acme.example")
    check = client.post(
        "/surveys/nps/waves/new/",
        {
            "source": "csv",
            "spread_days": 2,
            "action": "check",
            "file": SimpleUploadedFile("w.csv", csv),
        },
    )
    body = check.content.decode()
    assert "would reach 2 people" in body and "1 of them are new" in body
    assert not Person.objects.filter(email="new@acme.example").exists()
    kept = check.context["form"]["csv_upload"].value()
    done = client.post(
        "/surveys/nps/waves/new/",
        {"source": "csv", "spread_days": 2, "action": "schedule", "csv_upload": kept},
    )
    assert done.status_code == 302
    nia = Person.objects.get(email="new@acme.example")
    assert (nia.name, nia.locale) == ("Nia", "de")
    times = sorted(SurveyRequest.objects.values_list("scheduled_at", flat=True))
    assert times[1] - times[0] == timedelta(days=1)


def test_it_schedules_a_wave_from_a_csv_larger_than_a_form_field_may_be(manager: User) -> None:
    Survey.default()
    client = logged_in(manager)
    note = "x" * 400  # a wide column: 3,000 rows make a file of about 1.3 MB
    rows = "".join(f"w{i}@acme.example,Person {i},{note}\n" for i in range(3000))
    csv = ("email,name,note\n" + rows).encode()
    assert len(csv) > 1024 * 1024
    check = client.post(
        "/surveys/nps/waves/new/",
        {
            "source": "csv",
            "action": "check",
            "spread_days": 0,
            "file": SimpleUploadedFile("w.csv", csv),
        },
    )
    assert "would reach 3000 people" in check.content.decode().replace(",", "")
    kept = check.context["form"]["csv_upload"].value()
    assert len(kept) < 200  # a reference to the stored file, not the file again
    done = client.post(
        "/surveys/nps/waves/new/",
        {"source": "csv", "spread_days": 0, "action": "schedule", "csv_upload": kept},
    )
    assert done.status_code == 302
    assert SurveyRequest.objects.count() == 3000


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"source": "accounts"}, "accounts:"),
        ({"source": "csv", "file": b"name\nno email here\n"}, "file:"),
        ({"source": "segment", "property_key": "a__b", "property_value": "x"}, "property_key:"),
        ({"source": "segment", "spread_days": 99}, "spread_days:"),
        ({"source": "segment", "tier": "nobody-has-this"}, "audience:"),
    ],
)
def test_it_names_what_is_wrong_with_a_wave_and_writes_nothing(
    manager: User, enterprise: Account, form: dict[str, Any], field: str
) -> None:
    Survey.default()
    Person.objects.create(email="a@globex.example", account=enterprise)
    body: dict[str, Any] = {"spread_days": 0, "action": "schedule", **form}
    if isinstance(body.get("file"), bytes):
        body["file"] = SimpleUploadedFile("w.csv", body["file"])
    reply = logged_in(manager).post("/surveys/nps/waves/new/", body)
    assert reply.status_code == 422
    assert field in reply.content.decode()
    assert not Wave.objects.exists() and not SurveyRequest.objects.exists()


def test_it_refuses_waves_from_agents(agent: User) -> None:
    Survey.default()
    assert (
        logged_in(agent).post("/surveys/nps/waves/new/", {"source": "segment"}).status_code == 403
    )


def test_it_shows_a_waves_progress_and_cancels_what_is_not_sent(
    smtp: SmtpServer, manager: User, enterprise: Account
) -> None:
    Survey.default()
    for i in range(3):
        Person.objects.create(email=f"p{i}@globex.example", account=enterprise)
    client = logged_in(manager)
    client.post(
        "/surveys/nps/waves/new/",
        {
            "source": "accounts",
            "accounts": [enterprise.pk],
            "spread_days": 10,
            "action": "schedule",
        },
    )
    wave = Wave.objects.get()
    drain()
    page = client.get(f"/surveys/nps/waves/{wave.pk}/")
    body = page.content.decode()
    assert page.status_code == 200 and 'hx-trigger="every 10s"' in body
    assert page.context["r"].sent == 1 and page.context["r"].scheduled == 2
    client.post(f"/surveys/nps/waves/{wave.pk}/", {"action": "cancel"})
    statuses = sorted(wave.requests.values_list("status", flat=True))
    assert statuses == ["cancelled", "cancelled", "sent"]
    survey_page = client.get("/surveys/nps/").content.decode()
    assert f"/surveys/nps/waves/{wave.pk}/" in survey_page


def test_it_lists_silent_customers_and_exports_them(manager: User, enterprise: Account) -> None:
    person = Person.objects.create(email="quiet@globex.example", account=enterprise)
    survey = Survey.default()
    now = timezone.now()
    person.responses.create(survey=survey, score=5, created_at=now - timedelta(days=200))
    for ago in (90, 40):
        SurveyRequest.objects.create(
            person=person, survey=survey, status="sent", sent_at=now - timedelta(days=ago)
        )
    client = logged_in(manager)
    page = client.get("/surveys/silence/").content.decode()
    assert "Globex" in page and "quiet@globex.example" in page and "detractor" in page
    export = b"".join(client.get("/surveys/silence.csv").streaming_content).decode()
    assert export.splitlines()[1].startswith("Globex,120000.0,enterprise,quiet@globex.example")


def test_it_saves_a_surveys_settings_but_keeps_its_slug(manager: User) -> None:
    Survey.default()
    reply = logged_in(manager).post(
        "/surveys/nps/", new_survey(name="Relationship NPS", slug="renamed", reminder_days=0)
    )
    assert reply.status_code == 302 and reply["Location"] == "/surveys/nps/"
    survey = Survey.objects.get()
    assert (survey.slug, survey.name, survey.reminder_days) == ("nps", "Relationship NPS", 0)


def test_it_keeps_every_column_of_a_checked_csv_for_scheduling(manager: User) -> None:
    Survey.default()
    client = logged_in(manager)
    csv = b"email,account_external_id,account_name,tier\nnew@acme.example,acc-acme,Acme,smb\n"
    check = client.post(
        "/surveys/nps/waves/new/",
        {
            "source": "csv",
            "spread_days": 0,
            "action": "check",
            "file": SimpleUploadedFile("w.csv", csv),
        },
    )
    kept = check.context["form"]["csv_upload"].value()
    client.post(
        "/surveys/nps/waves/new/",
        {"source": "csv", "spread_days": 0, "action": "schedule", "csv_upload": kept},
    )
    person = Person.objects.select_related("account").get(email="new@acme.example")
    assert person.account is not None
    assert (person.account.name, person.account.tier) == ("Acme", "smb")


def test_it_names_the_file_when_a_kept_csv_reference_is_forged(manager: User) -> None:
    Survey.default()
    reply = logged_in(manager).post(
        "/surveys/nps/waves/new/",
        {"source": "csv", "spread_days": 0, "action": "schedule", "csv_upload": "forged"},
    )
    assert reply.status_code == 422
    assert "choose the CSV file" in reply.content.decode()
    assert SurveyRequest.objects.count() == 0
