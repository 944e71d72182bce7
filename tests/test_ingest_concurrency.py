"""Concurrent writers on PostgreSQL: the same new person from many requests at once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from closeloop.loop.intake import record_responses
from closeloop.surveys.ingest import PersonData, ResponseData
from closeloop.surveys.models import Person, Response

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite serialises writers; nothing can race"
)
def test_it_creates_one_person_when_many_requests_race_to_create_them() -> None:
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def post(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            record_responses(
                [
                    ResponseData(
                        person=PersonData(email="race@x.io", name=f"R{index}"),
                        score=index,
                        external_id=f"race-{index % 4}",
                    ),
                ]
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Person.objects.filter(email="race@x.io").count() == 1
    assert Response.objects.count() == 4  # external_ids race-0..3, each stored once
