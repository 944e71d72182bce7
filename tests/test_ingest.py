"""record_responses: the one path every answer takes, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.core.db import COPY_MIN_ROWS
from closeloop.core.errors import FieldError
from closeloop.loop.intake import record_responses
from closeloop.surveys.ingest import AccountData, PersonData, ResponseData
from closeloop.surveys.models import Person, Response, Survey

pytestmark = pytest.mark.django_db


def test_it_writes_a_large_batch_with_ids_snapshots_and_timestamps() -> None:
    n = COPY_MIN_ROWS * 3
    account = AccountData(
        external_id="acc", name="Acme", tier="enterprise", properties={"region": "emea"}
    )
    items = [
        ResponseData(
            person=PersonData(
                email=f"p{i}@x.io", properties={"seats": i, "tags": ["a", "b"]}, account=account
            ),
            score=i % 11,
            comment=f"comment {i}",
            tags=["bulk"],
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for i in range(n)
    ]
    outcomes = record_responses(items)
    assert all(o.created and o.response.pk for o in outcomes)
    assert len({o.response.pk for o in outcomes}) == n
    stored = Response.objects.get(pk=outcomes[7].response.pk)
    assert stored.score == 7 and stored.comment == "comment 7" and stored.tags == ["bulk"]
    assert stored.properties["seats"] == 7 and stored.properties["account.region"] == "emea"
    assert stored.properties["tags"] == ["a", "b"]
    person = Person.objects.get(email="p7@x.io")
    assert person.updated_at is not None and person.account is not None
    # Ids reserved for a COPY must not collide with rows written afterwards.
    (later,) = record_responses([ResponseData(person=PersonData(email="late@x.io"), score=5)])
    assert later.response.pk not in {o.response.pk for o in outcomes}


def test_it_refuses_an_unknown_owner_and_writes_nothing() -> None:
    item = ResponseData(
        person=PersonData(
            email="a@x.io", account=AccountData(name="Acme", owner_email="ghost@x.io")
        ),
        score=3,
    )
    with pytest.raises(FieldError) as caught:
        record_responses([item])
    assert caught.value.field == "account.owner_email"
    assert Person.objects.count() == 0 and Response.objects.count() == 0


def test_it_merges_two_mentions_of_one_person_in_a_batch() -> None:
    record_responses(
        [
            ResponseData(
                person=PersonData(email="a@x.io", name="Ann", properties={"a": 1}), score=3
            ),
            ResponseData(
                person=PersonData(email="a@x.io", phone="+1", properties={"b": 2}), score=4
            ),
        ]
    )
    person = Person.objects.get()
    assert (person.name, person.phone, person.properties) == ("Ann", "+1", {"a": 1, "b": 2})
    assert person.responses.count() == 2


def test_it_finds_rows_by_any_of_a_list_as_in_does() -> None:
    people = Person.objects.bulk_create(
        [Person(email=f"any{i}@x.io", external_id=f"x{i}" if i % 2 else None) for i in range(50)]
    )
    emails = [f"any{i}@x.io" for i in range(0, 60, 3)]  # some match nobody
    by_any = set(Person.objects.filter(email__any=emails).values_list("pk", flat=True))
    assert by_any == set(Person.objects.filter(email__in=emails).values_list("pk", flat=True))
    assert len(by_any) == 17
    ids = [p.pk for p in people[:5]] + [None]
    assert set(Person.objects.filter(pk__any=ids).values_list("pk", flat=True)) == set(ids[:5])
    assert not Person.objects.filter(external_id__any=[]).exists()
    # Beside other conditions, and from a subquery (which stays an IN).
    odd = Person.objects.filter(external_id__isnull=False)
    assert Person.objects.filter(email__any=emails, external_id__isnull=False).count() == 8
    assert Person.objects.filter(pk__any=odd.values("pk")).count() == 25
    # Over a foreign key, by id or by instance.
    survey = Survey.default()
    answers = [Response.objects.create(person=p, survey=survey, score=3) for p in people[:3]]
    by_id = Response.objects.filter(person_id__any=[people[0].pk, people[2].pk])
    assert set(by_id) == {answers[0], answers[2]}
    assert set(Response.objects.filter(person__any=people[1:2])) == {answers[1]}
