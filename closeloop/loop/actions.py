"""What people and the worker do to a case, and who hears of it.

Each action changes the case through its own methods (which log it on the timeline)
and then tells whoever must know: the owner, watchers, webhooks and Slack (`notify`).
The API, the pages, triage and inbound mail all act on cases through here.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from closeloop.core.errors import FieldError
from closeloop.delivery.models import Delivery
from closeloop.team.models import User

from . import batch, checkback, conversation, notify
from .models import Activity, Announcement, Conversation, FollowUpCase, InboundMessage


def assign(case: FollowUpCase, owner: User | None, actor: User | None, why: str = "") -> None:
    """Give the case to someone (None: the unassigned queue); a new owner is told."""
    if not case.assign(owner, actor, why):
        return
    if owner is not None and owner != actor:
        notify.owner_alert(case, reason="assigned")
    notify.case_event(case, "case.updated")


def add_note(case: FollowUpCase, text: str, actor: User | None) -> Activity:
    """A note on the timeline."""
    activity = case.log(Activity.Kind.NOTE, text, actor)
    notify.case_event(case, "case.updated")
    return activity


def log_call(case: FollowUpCase, outcome: str, note: str, actor: User | None) -> Activity:
    """A call happened (or was tried); reaching the customer starts the conversation."""
    activity = case.log_call(outcome, note, actor)
    notify.case_event(case, "case.updated")
    return activity


def close(
    case: FollowUpCase,
    resolution: str,
    reason: str,
    note: str,
    actor: User | None,
    promises: dict[int, tuple[str, str]] | None = None,
) -> None:
    """Close with an outcome, a reason and a note, and what became of each open promise;
    a resolved case is checked back on later (`checkback`)."""
    case.close(resolution, reason, note, actor, promises)
    if resolution == FollowUpCase.Resolution.RESOLVED:
        checkback.schedule(case, actor)
    notify.case_event(case, "case.closed")


def give_gesture(
    case: FollowUpCase,
    kind: str,
    value: float | None,
    currency: str,
    note: str,
    actor: User | None,
) -> None:
    """A recovery gesture made to the customer, recorded with its value."""
    case.give(kind, value, currency, note, actor)
    notify.case_event(case, "case.updated")


def set_type(case: FollowUpCase, kind: str, actor: User | None) -> None:
    """A person types the detractor. One who is leaving brings in the owner and, at a top
    account, the executive sponsor at once (policy: a call within 24 hours)."""
    if not case.set_detractor_type(kind, actor):
        return
    if kind == FollowUpCase.DetractorType.LEAVING:
        notify.leaving_alert(case, actor)
    notify.case_event(case, "case.updated")


def reopen(case: FollowUpCase, why: str, actor: User | None) -> None:
    """Open a closed case again."""
    case.reopen(why, actor)
    notify.case_event(case, "case.updated")


def receive_reply(case: FollowUpCase, inbound: InboundMessage, automatic: bool = False) -> None:
    """A customer's email landed: the conversation is on, the SLA met, the owner told.

    A reply to a closed case reopens it. An auto-reply (out of office) is only
    noted: it is not the customer talking. Mail from another address (a colleague,
    a forward, someone who found the reply address) is shown as such and the owner
    told, but it neither reopens the case, nor counts as the customer's reply.
    """
    customer = (case.person.email or "").lower()
    if not automatic and inbound.from_address.lower() != customer:
        case.log(
            Activity.Kind.REPLY_RECEIVED,
            f"From {inbound.from_address} (not the customer's address):\n\n"
            + (inbound.text or "(no text; see the original message)"),
            inbound=inbound.pk,
            sender=inbound.from_address,
            subject=inbound.subject,
            not_customer=True,
        )
        notify.reply_alert(case, inbound)
        return
    if automatic:
        case.log(
            Activity.Kind.REPLY_RECEIVED,
            f"automatic reply from {inbound.from_address}: {inbound.subject}",
            inbound=inbound.pk,
            automatic=True,
        )
        return
    case.log(
        Activity.Kind.REPLY_RECEIVED,
        inbound.text or "(no text; see the original message)",
        inbound=inbound.pk,
        sender=inbound.from_address,
        subject=inbound.subject,
    )
    case.touch(inbound.received_at)
    if case.is_closed:
        reopen(case, "the customer replied", None)
    case.set_status(FollowUpCase.Status.IN_CONVERSATION)
    notify.reply_alert(case, inbound)
    notify.case_event(case, "case.updated")
    # The reply is the customer's answer in the follow-up conversation: the next
    # question goes back by email (conversation.email_reply says when).
    conversation.email_reply(case, inbound)


def take_over(case: FollowUpCase, actor: User | None) -> None:
    """The owner takes the follow-up conversation over: the engine stops asking."""
    talk = Conversation.objects.filter(case=case).first()
    if talk is None:
        raise FieldError("conversation", "this case has no follow-up conversation")
    conversation.take_over(talk, actor)
    notify.case_event(case, "case.updated")


def write_in_conversation(case: FollowUpCase, text: str, actor: User) -> None:
    """The owner writes to the customer in the conversation (taking it over): shown on
    the conversation page and sent by email."""
    talk = Conversation.objects.filter(case=case).first()
    if talk is None:
        raise FieldError("conversation", "this case has no follow-up conversation")
    conversation.owner_says(talk, conversation.clean_text(text), actor)
    notify.case_event(case, "case.updated")


def attach(inbound: InboundMessage, case: FollowUpCase, actor: User | None) -> None:
    """Place a quarantined message on a case by hand; it then counts as the customer's reply."""
    inbound.attach_to(case, actor)
    receive_reply(case, inbound)


def send_announcement(announcement: Announcement, actor: User | None) -> None:
    """Tell every chosen customer of a fix, once per person, and log it on each case;
    close the open cases as resolved when the announcement says so."""
    announcement.validate_draft()
    with transaction.atomic():
        if (
            Announcement.objects.select_for_update().filter(pk=announcement.pk).get().status
            == Announcement.Status.SENT
        ):
            raise FieldError("status", "this announcement was already sent")
        cases = announcement.chosen_cases()
        if not cases:
            raise FieldError("case_ids", "choose at least one case")
        told: dict[int, FollowUpCase] = {}
        with batch.collecting():
            for case in cases:
                first = told.get(case.person_id)
                if first is None:
                    told[case.person_id] = case
                    subject, body = announcement.render(case)
                    queued = notify.customer_email(
                        case,
                        subject,
                        body,
                        Delivery.Purpose.FIX_SHIPPED,
                        actor,
                        announcement=announcement,
                    )
                    if queued is None:
                        announcement.not_emailed += 1
                        text = (
                            f"Fix shipped: {announcement.title} (the customer could not be emailed)"
                        )
                    else:
                        announcement.emailed += 1
                        text = f"Fix shipped: {announcement.title}; the customer is being told"
                else:
                    text = f"Fix shipped: {announcement.title}; told by email on case #{first.pk}"
                case.log(Activity.Kind.FIX_SHIPPED, text, actor, announcement=announcement.pk)
                if announcement.resolve and not case.is_closed:
                    note = f"{announcement.title}. {announcement.details}".strip()
                    close(case, FollowUpCase.Resolution.RESOLVED, "fix shipped", note, actor)
        announcement.status = Announcement.Status.SENT
        announcement.sent_by = actor
        announcement.sent_at = timezone.now()
        announcement.save(update_fields=["status", "sent_by", "sent_at", "emailed", "not_emailed"])
