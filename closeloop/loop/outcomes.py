"""What the apps do when the outbox says how a delivery went: the listeners the worker
hands to the delivery steps (`worker.py`), and bounce reports to the outbox.

A sent outreach email is the case's first touch and goes on its timeline; an owner's
alert or a Slack post is noted there too; a delivery that failed for good is told to
its survey request or its case; an address that bounced marks its people; admins
hear when the mail set-up stops all email and when it works again.
"""

from __future__ import annotations

from datetime import datetime

from closeloop.delivery.models import Delivery
from closeloop.delivery.sending import Listeners
from closeloop.surveys import sending as survey_sending
from closeloop.surveys.models import Person

from . import batch, notify


def _sent(deliveries: list[Delivery]) -> None:
    with batch.collecting():  # a batch's timeline entries are written together
        notify.deliveries_sent(deliveries)


def _gave_up(delivery: Delivery) -> None:
    if delivery.survey_request_id is not None:
        survey_sending.delivery_failed(delivery)
    else:
        notify.delivery_failed(delivery)


def _bounced(address: str, at: datetime) -> None:
    Person.mark_bounced(address, at)


LISTENERS = Listeners(
    sent=_sent,
    gave_up=_gave_up,
    bounced=_bounced,
    outage=notify.mail_outage,
    outage_over=notify.mail_outage_over,
)
