"""record_responses: the one path every answer takes, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.core.db import COPY_MIN_ROWS
from closeloop.core.errors import FieldError
from closeloop.loop.intake import record_responses
from closeloop.surveys.ingest import AccountData, PersonData, ResponseData
from closeloop.surveys.models import Person, Response

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
