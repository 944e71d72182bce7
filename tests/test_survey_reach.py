"""Response rate per survey and wave, and people who fell silent."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from closeloop.loop.intake import record_responses
from closeloop.surveys import links, reach, sending, waves
from closeloop.surveys.ingest import PersonData, ResponseData
from closeloop.surveys.models import Account, Person, Response, Survey, SurveyRequest
from closeloop.team.models import User

from .conftest import ApiClient, click_score, drain
from .loopback import SmtpServer

pytestmark = pytest.mark.django_db


def people(n: int, account: Account | None = None, prefix: str = "p") -> list[Person]:
    return [
        Person.objects.create(email=f"{prefix}{i}@customer.example", account=account)
        for i in range(n)
    ]


def answer(request: SurveyRequest, score: int = 9) -> None:
    click_score(Client(), "/" + links.score_url(request, score).split("/", 3)[3])


def test_it_counts_sent_delivered_opened_and_answered_per_wave(
    smtp: SmtpServer, enterprise: Account, manager: User
) -> None:
    people(5, enterprise)
    Person.objects.create(email="gone@customer.example", account=enterprise).save()
    Person.objects.filter(email="gone@customer.example").update(unsubscribed_at=timezone.now())
    smtp.inbox.refuse.add("p4@customer.example")
    survey = Survey.default()
    wave = waves.start(survey, waves.Audience(source="accounts", account_ids=[enterprise.pk]))
    drain()
    requests = {r.person.email: r for r in wave.requests.select_related("person", "survey")}
    Client().get("/" + links.open_url(requests["p0@customer.example"]).split("/", 3)[3])
    answer(requests["p1@customer.example"], 3)
    answer(requests["p2@customer.example"], 10)

    figures = reach.reach(wave.requests.all())
    assert (figures.requested, figures.skipped, figures.sent) == (6, 1, 5)
    assert (figures.delivered, figures.bounced, figures.failed) == (4, 1, 1)
    assert (figures.opened, figures.answered) == (3, 2)
    assert figures.rate == pytest.approx(2 / 4)
    assert figures.skip_reasons == {"unsubscribed": 1}
    by_wave = reach.reach_by(reach.survey_requests(), "wave_id")
    assert by_wave[wave.pk].answered == 2


def test_it_warns_when_the_rate_is_under_the_b2b_median_on_enough_deliveries(
    smtp: SmtpServer,
) -> None:
    survey = Survey.default()
    with time_machine.travel(timezone.now() - timedelta(days=10), tick=False):
        sending.schedule(people(25), survey)
        drain()
    for request in SurveyRequest.objects.select_related("survey", "person")[:3]:
        answer(request)
    figures = reach.reach_by(reach.survey_requests(), "survey_id")[survey.pk]
    assert figures.delivered == 25 and figures.answered == 3
    assert figures.rate == pytest.approx(0.12) and figures.below_median
    assert not figures.collecting

    answer(SurveyRequest.objects.select_related("survey", "person").filter(answered_at=None)[0])
    figures = reach.reach_by(reach.survey_requests(), "survey_id")[survey.pk]
    assert figures.rate == pytest.approx(0.16) and not figures.below_median


def test_it_does_not_warn_on_a_handful_of_deliveries(smtp: SmtpServer) -> None:
    sending.schedule(people(5), Survey.default())
    drain()
    figures = reach.reach(reach.survey_requests())
    assert figures.delivered == 5 and figures.rate == 0
    assert not figures.below_median and figures.collecting


def test_it_keeps_follow_up_surveys_out_of_a_surveys_reach(smtp: SmtpServer) -> None:
    survey = Survey.default()
    sending.schedule(people(2), survey)
    sending.schedule(people(3, prefix="f"), survey, purpose=SurveyRequest.Purpose.FOLLOW_UP)
    drain()
    assert reach.reach(reach.survey_requests()).sent == 2
    assert reach.reach(SurveyRequest.objects.all()).sent == 5


# --- silence ---------------------------------------------------------------------------------


def _history(email: str, account: Account | None, answered_first: bool, days: list[int]) -> Person:
    """A person who (maybe) answered 200 days ago, then got invitations `days` ago."""
    person = Person.objects.create(email=email, account=account)
    now = timezone.now()
    if answered_first:
        record_responses(
            [
                ResponseData(
                    person=PersonData(email=email), score=4, created_at=now - timedelta(days=200)
                )
            ]
        )
    for ago in days:
        SurveyRequest.objects.create(
            person=person,
            survey=Survey.default(),
            status=SurveyRequest.Status.SENT,
            sent_at=now - timedelta(days=ago),
        )
    return person


def test_it_lists_people_who_answered_before_and_ignored_their_last_two_invitations(
    enterprise: Account,
) -> None:
    _history("quiet@globex.example", enterprise, True, [90, 40])
    (silent,) = reach.silent_people()
    assert silent.email == "quiet@globex.example"
    assert silent.last_score == 4
    assert silent.silent_since.date() == (timezone.now() - timedelta(days=90)).date()


def test_it_does_not_call_someone_silent_who_answered_the_latest_invitation(
    enterprise: Account,
) -> None:
    person = _history("talks@globex.example", enterprise, True, [90, 40])
    record_responses(
        [
            ResponseData(
                person=PersonData(email=person.email or ""),
                score=8,
                created_at=timezone.now() - timedelta(days=39),
            )
        ]
    )
    assert list(reach.silent_people()) == []


def test_it_needs_an_earlier_answer_and_two_invitations_older_than_a_week(
    enterprise: Account,
) -> None:
    _history("never@globex.example", enterprise, False, [90, 40])
    _history("once@globex.example", enterprise, True, [40])
    _history("fresh@globex.example", enterprise, True, [40, 2])
    assert list(reach.silent_people()) == []
    with time_machine.travel(timezone.now() + timedelta(days=6)):
        assert [p.email for p in reach.silent_people()] == ["fresh@globex.example"]


def test_it_does_not_count_an_invitation_that_failed_as_ignored(enterprise: Account) -> None:
    person = _history("bounced@globex.example", enterprise, True, [90, 40])
    SurveyRequest.objects.filter(
        person=person, sent_at__gte=timezone.now() - timedelta(days=50)
    ).update(status=SurveyRequest.Status.FAILED)
    assert list(reach.silent_people()) == []


def test_it_groups_silent_people_by_account_with_the_most_arr_first(
    enterprise: Account, smb: Account
) -> None:
    _history("a@initech.example", smb, True, [90, 40])
    _history("b@globex.example", enterprise, True, [90, 40])
    _history("c@globex.example", enterprise, True, [60, 20])
    _history("d@nowhere.example", None, True, [60, 20])
    groups = reach.silence_by_account(reach.silent_people().order_by("email"))
    assert [(g.account.name if g.account else None, len(g.people)) for g in groups] == [
        ("Globex", 2),
        ("Initech", 1),
        (None, 1),
    ]
    assert groups[0].detractors == 2
    assert Response.objects.count() == 4


def test_it_serves_reach_and_silence_through_the_api(
    smtp: SmtpServer, api: ApiClient, enterprise: Account
) -> None:
    survey = Survey.default()
    people(2, enterprise)
    wave = waves.start(survey, waves.Audience(source="accounts", account_ids=[enterprise.pk]))
    drain()
    answer(wave.requests.select_related("survey", "person").first())
    (listed,) = api.get_json("/api/v1/surveys").json()
    assert listed["slug"] == "nps" and listed["reach"]["delivered"] == 2
    assert listed["reach"]["answered"] == 1 and listed["reach"]["response_rate"] == 0.5
    (row,) = api.get_json("/api/v1/surveys/nps/waves").json()
    assert row["id"] == wave.pk and row["reach"]["invited"] == 2
    assert api.get_json("/api/v1/surveys/nope/waves").status_code == 404
    _history("quiet@globex.example", enterprise, True, [90, 40])
    (silent,) = api.get_json("/api/v1/silence").json()
    assert silent["email"] == "quiet@globex.example" and silent["account"] == "Globex"
    assert ApiClient(None).get_json("/api/v1/silence").status_code == 401
