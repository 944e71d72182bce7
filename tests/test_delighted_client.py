"""The official Delighted Python client, unmodified, against a live closeloop at /v1/."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from django.utils import timezone

from closeloop.access.models import ApiKey
from closeloop.loop.models import FollowUpCase
from closeloop.surveys.models import Person, Response, ResponseEdit, SurveyRequest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # the package says Delighted is sunset
    import delighted
    from delighted.errors import (
        AuthenticationError,
        ResourceValidationError,
        TooManyRequestsError,
    )

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server: Any) -> delighted.Client:
    _, plain = ApiKey.issue("delighted integration")
    return delighted.Client(api_key=plain, api_base_url=f"{live_server.url}/v1/")


def test_it_creates_a_person_and_schedules_their_survey(client: delighted.Client) -> None:
    person = delighted.Person.create(
        client=client,
        email="Jony@Example.com",
        name="Jony Ive",
        delay=3600,
        properties={"customer_id": 123, "plan": "pro", "question_product_name": "Acme"},
    )
    assert person.email == "jony@example.com" and person.name == "Jony Ive"
    stored = Person.objects.get(pk=int(person.id))
    assert stored.properties == {"customer_id": 123, "plan": "pro"}
    request = SurveyRequest.objects.get(person=stored)
    assert request.status == SurveyRequest.Status.SCHEDULED
    assert request.options == {"product": "Acme"}
    assert abs(person.survey_scheduled_at - (timezone.now().timestamp() + 3600)) < 60
    # send=False adds without surveying; a second create updates the same person.
    again = delighted.Person.create(client=client, email="jony@example.com", name="J", send=False)
    assert again.id == person.id and again.survey_scheduled_at is None
    assert SurveyRequest.objects.count() == 1


def test_it_records_lists_retrieves_and_updates_responses(client: delighted.Client) -> None:
    person = delighted.Person.create(client=client, email="pat@example.com", send=False)
    created = delighted.SurveyResponse.create(
        client=client,
        person=person.id,
        score=3,
        comment="Exports time out",
        person_properties={"role": "admin"},
    )
    assert (created.score, created.comment, created.person) == (3, "Exports time out", person.id)
    assert created.person_properties["role"] == "admin"
    assert FollowUpCase.objects.get().score == 3  # the detractor gets their follow-up
    delighted.SurveyResponse.create(client=client, person=person.id, score=10)

    listed = delighted.SurveyResponse.all(client=client, expand=["person"], order="desc")
    assert [r.score for r in listed] == [10, 3]
    assert isinstance(listed[0].person, delighted.Person)
    assert listed[0].person.email == "pat@example.com"
    assert [r.score for r in delighted.SurveyResponse.all(client=client, per_page=1, page=2)] == [
        10
    ]

    fetched = delighted.SurveyResponse.retrieve(created.id, client=client, expand=["person"])
    fetched.score = 5
    fetched.comment = "Exports time out, support was kind"
    saved = fetched.save(client=client)
    assert saved.score == 5
    edit = ResponseEdit.objects.get()
    assert (edit.score_before, edit.score_after) == (3, 5)
    assert Response.objects.get(pk=int(created.id)).comment.endswith("support was kind")


def test_it_reads_metrics_that_match_the_stored_answers(client: delighted.Client) -> None:
    person = delighted.Person.create(client=client, email="m@example.com", send=False)
    for score in (10, 9, 8, 2, 6):
        delighted.SurveyResponse.create(client=client, person=person.id, score=score)
    metrics = delighted.Metrics.retrieve(client=client)
    assert metrics.response_count == Response.objects.count() == 5
    assert (metrics.promoter_count, metrics.passive_count, metrics.detractor_count) == (2, 1, 2)
    assert metrics.nps == 0 and metrics.promoter_percent == 40.0
    past = delighted.Metrics.retrieve(client=client, since=1, until=1000)
    assert past.response_count == 0


def test_it_unsubscribes_lists_and_cancels_pending_requests(client: delighted.Client) -> None:
    delighted.Person.create(client=client, email="later@example.com", delay=86400)
    delighted.SurveyRequest.delete_pending(client=client, person_email="later@example.com")
    assert SurveyRequest.objects.get().status == SurveyRequest.Status.CANCELLED

    delighted.Unsubscribe.create(client=client, person_email="gone@example.com")
    (gone,) = delighted.Unsubscribe.all(client=client)
    assert gone.email == "gone@example.com" and gone.unsubscribed_at > 0
    Person.objects.filter(email="later@example.com").update(bounced_at=timezone.now())
    assert [b.email for b in delighted.Bounce.all(client=client)] == ["later@example.com"]


def test_it_pages_people_through_link_headers_and_deletes_them(client: delighted.Client) -> None:
    for n in range(5):
        delighted.Person.create(client=client, email=f"p{n}@example.com", send=False)
    pages = delighted.Person.list(client=client, per_page=2)
    assert [p.email for p in pages.auto_paging_iter()] == [f"p{n}@example.com" for n in range(5)]

    first = Person.objects.get(email="p0@example.com")
    assert delighted.Person.delete(client=client, id=first.pk) == {"ok": True}
    delighted.Person.delete(client=client, email="p1@example.com")
    assert not Person.objects.filter(email__in=["p0@example.com", "p1@example.com"]).exists()


def test_it_answers_errors_as_delighted_does(client: delighted.Client, settings: Any) -> None:
    with pytest.raises(ResourceValidationError) as missing:
        delighted.Person.create(client=client, name="No Email")
    assert '"field": "email"' in missing.value.response.body
    with pytest.raises(ResourceValidationError) as score:
        delighted.SurveyResponse.create(client=client, person="1", score=11)
    assert "person" in score.value.response.body or "score" in score.value.response.body
    stranger = delighted.Client(api_key="not-a-key-at-all-000000", api_base_url=client.api_base_url)
    with pytest.raises(AuthenticationError):
        delighted.Metrics.retrieve(client=stranger)
    settings.DELIGHTED_RATE_LIMIT_PER_MINUTE = 2
    with pytest.raises(TooManyRequestsError) as limited:
        for _ in range(5):
            delighted.Metrics.retrieve(client=client)
    assert limited.value.retry_after >= 1


def test_it_accepts_an_adopted_delighted_key(live_server: Any) -> None:
    ApiKey.adopt("from Delighted", "dk_8f3a2c1b9e7d6f5a4b3c2d1e")
    old = delighted.Client(
        api_key="dk_8f3a2c1b9e7d6f5a4b3c2d1e", api_base_url=f"{live_server.url}/v1/"
    )
    assert delighted.Metrics.retrieve(client=old).response_count == 0
