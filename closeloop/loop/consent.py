"""A customer's say over being contacted: unsubscribing stops every survey and every
queued email to them, and their case hears of it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from closeloop.delivery.models import Delivery
from closeloop.surveys.models import Person, SurveyRequest

from . import notify


def unsubscribe_person(person: Person) -> bool:
    """Stop surveying a person: mark them and cancel what is scheduled. False if already done."""
    with transaction.atomic():
        done = Person.objects.filter(pk=person.pk, unsubscribed_at__isnull=True).update(
            unsubscribed_at=timezone.now()
        )
        SurveyRequest.objects.filter(person=person, status=SurveyRequest.Status.SCHEDULED).update(
            status=SurveyRequest.Status.CANCELLED, status_reason="unsubscribed"
        )
        if person.email:  # and every email to them still queued, retries included
            Delivery.cancel_to_customer(person.email, "not sent: the customer unsubscribed")
        if done:
            person.refresh_from_db(fields=["unsubscribed_at"])
            notify.unsubscribed(person)
    return bool(done)
