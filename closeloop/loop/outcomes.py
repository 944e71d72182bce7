"""What the apps do when the outbox says how a delivery went: the listeners the worker
hands to the delivery steps (`worker.py`), and bounce reports to the outbox.

A sent outreach email is the case's first touch and goes on its timeline; an owner's
alert or a Slack post is noted there too; a delivery that failed for good is told to
its survey request or its case; an address that bounced marks its people; admins
hear when the mail set-up stops all email and when it works again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils import timezone

from closeloop.delivery.models import Delivery, Outage
from closeloop.delivery.sending import Listeners
from closeloop.surveys import sending as survey_sending
from closeloop.surveys.models import Person
from closeloop.team.models import User

from . import batch
from .models import Activity, FollowUpCase, Notification


def _sent(deliveries: list[Delivery]) -> None:
    with batch.collecting():  # a batch's timeline entries are written together
        deliveries_sent(deliveries)


def _gave_up(delivery: Delivery) -> None:
    if delivery.survey_request_id is not None:
        survey_sending.delivery_failed(delivery)
    else:
        delivery_failed(delivery)


def _bounced(address: str, at: datetime) -> None:
    Person.mark_bounced(address, at)


def deliveries_sent(deliveries: Sequence[Delivery]) -> None:
    """Put sent messages on their cases' timelines; customer outreach is the first touch
    (an acknowledgement is not: the personal action it announces keeps its deadline).

    The first touches of a whole batch are written together (`FollowUpCase.contacted`).
    """
    reached: dict[int, FollowUpCase] = {}
    for delivery in deliveries:
        case = delivery.case
        if case is None:
            continue
        if delivery.purpose in (
            Delivery.Purpose.OUTREACH,
            Delivery.Purpose.ACKNOWLEDGE,
            Delivery.Purpose.FIX_SHIPPED,
        ):
            case.log(
                Activity.Kind.EMAIL_SENT,
                f"Subject: {delivery.subject}\n\n{delivery.body}",
                delivery=delivery.pk,
                to=delivery.to,
            )
            if delivery.purpose == Delivery.Purpose.OUTREACH:
                reached.setdefault(case.pk, case)
        elif delivery.purpose in (Delivery.Purpose.OWNER_ALERT, Delivery.Purpose.ESCALATION):
            case.log(Activity.Kind.NOTIFIED, f"emailed {delivery.to}", to=delivery.to)
        elif delivery.kind == Delivery.Kind.SLACK:
            case.log(
                Activity.Kind.NOTIFIED,
                f"posted to Slack ({delivery.event})",
                channel=delivery.channel_id,
            )
    if reached:
        sent = [d.sent_at for d in deliveries if d.sent_at is not None]
        FollowUpCase.contacted(list(reached.values()), min(sent) if sent else timezone.now())


def delivery_failed(delivery: Delivery) -> None:
    """A delivery failed for good: say so on the case (the bounce, if it was one, is
    marked by the outbox for every kind of customer email alike)."""
    case = delivery.case
    if case is not None:
        case.log(
            Activity.Kind.DELIVERY_FAILED,
            f"{delivery.get_kind_display()} to {delivery.to} failed: {delivery.last_error}",
            delivery=delivery.pk,
        )


def mail_outage(outage: Outage) -> None:
    """Email stopped because of our set-up: tell the admins in the app (email may not go)."""
    _tell_admins(f"Email is held back: {outage.describe()} ({outage.error})")


def mail_outage_over(outage: Outage) -> None:
    """Email goes out again: tell the admins who were told it stopped."""
    _tell_admins(f"Email goes out again; before, {outage.describe()} ({outage.held} emails waited)")


def _tell_admins(text: str) -> None:
    """An in-app notice to every admin (email may be what is failing)."""
    Notification.objects.bulk_create([Notification(user=u, text=text[:500]) for u in User.admins()])


LISTENERS = Listeners(
    sent=_sent,
    gave_up=_gave_up,
    bounced=_bounced,
    outage=mail_outage,
    outage_over=mail_outage_over,
)
