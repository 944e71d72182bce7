"""Who hears about a case (its recipients), through which channels: rows in the outbox,
never sends.

Every function here writes Delivery (or Notification) rows inside the caller's
transaction; the worker sends them after commit and reports back through
`outcomes`. What the rows say is `messages` (alerts) and `payloads` (JSON).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from email.utils import formataddr
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from closeloop.delivery.models import DELIGHTED_NAMES, Channel, Delivery
from closeloop.surveys import delighted_shapes
from closeloop.surveys.models import Person, Response
from closeloop.team.models import Role, User

from . import batch, outreach
from .messages import alert_email, alert_mail, headline, slack_message
from .models import Activity, Announcement, FollowUpCase, InboundMessage, Notification, Task
from .payloads import (
    case_json,
    case_url,
    conversation_json,
    conversation_of,
    event_payload,
    response_json,
)

CONVERSATION_EVENTS = ("conversation.completed", "case.urgent")
NOREPLY = re.compile(r"no[-_.]?reply|do[-_.]?not[-_.]?reply", re.IGNORECASE)


def _channels_for(case: FollowUpCase, event: str) -> list[Channel]:
    """Active channels subscribed to `event` whose filters match the case (detractor and
    health cases only)."""
    if case.loop not in (FollowUpCase.Loop.DETRACTOR, FollowUpCase.Loop.HEALTH):
        return []
    found = []
    channels = batch.cached("channels", lambda: list(Channel.objects.filter(active=True)))
    for channel in channels:
        if event not in channel.subscribed_events:
            continue
        if channel.bands and case.band not in channel.bands:
            continue
        tier = (case.account.tier if case.account else "").lower()
        if channel.tiers and tier not in {t.lower() for t in channel.tiers}:
            continue
        if channel.team_id is not None and not _in_team(case, channel.team_id):
            continue
        found.append(channel)
    return found


def _in_team(case: FollowUpCase, team_id: int) -> bool:
    if case.team_id == team_id:
        return True
    return case.owner is not None and case.owner.teams.filter(pk=team_id).exists()


def case_event(case: FollowUpCase, event: str) -> None:
    """Queue `event` about `case` for every channel that wants it."""
    for channel in _channels_for(case, event):
        _queue_channel(channel, event, case)


def _queue_channel(channel: Channel, event: str, case: FollowUpCase) -> None:
    event_id = uuid.uuid4()
    purpose = Delivery.Purpose.CHANNEL
    common = {"channel": channel, "event": event, "event_id": event_id}
    if channel.kind == Channel.Kind.WEBHOOK:
        data: dict[str, Any] = {"case": case_json(case)}
        if event in CONVERSATION_EVENTS:
            data["conversation"] = conversation_json(conversation_of(case))
        payload = event_payload(event, event_id, data)
        batch.add(_webhook_row(channel, event, event_id, payload, case))
    elif channel.kind == Channel.Kind.SLACK:
        batch.add(
            Delivery(
                kind=Delivery.Kind.SLACK,
                purpose=purpose,
                case=case,
                to=channel.url,
                payload=slack_message(case, event),
                **common,
            )
        )
    else:
        subject, body = alert_email(case, event)
        alert_mail(case, channel.email, subject, body, purpose, **common)


def responses_created(responses: Sequence[Response]) -> None:
    """Queue response.created for webhook channels that subscribe to it."""
    response_event(responses, "response.created")


def response_event(responses: Sequence[Response], event: str) -> None:
    """Queue a response event (created, updated) for webhook channels that subscribe to it.

    Delighted-format channels get it under Delighted's name and in Delighted's shape.
    """
    webhooks = list(Channel.objects.filter(active=True, kind=Channel.Kind.WEBHOOK))
    rows = []
    delighted = DELIGHTED_NAMES.get(event)
    if delighted is not None:
        rows += _delighted_rows(
            [c for c in webhooks if c.format == Channel.Format.DELIGHTED],
            delighted,
            lambda: [
                delighted_shapes.response_json(r, {"person"}, settings.SITE_URL) for r in responses
            ],
        )
    channels = [
        c for c in webhooks if c.format == Channel.Format.CLOSELOOP and event in c.subscribed_events
    ]
    for response in responses:
        for channel in channels:
            if channel.bands and (response.band is None or response.band not in channel.bands):
                continue
            tier = str(response.properties.get("account.tier", "")).lower()
            if channel.tiers and tier not in {t.lower() for t in channel.tiers}:
                continue
            event_id = uuid.uuid4()
            data = {"response": response_json(response)}
            rows.append(
                _webhook_row(channel, event, event_id, event_payload(event, event_id, data))
            )
    Delivery.objects.bulk_create(rows)


def _webhook_row(
    channel: Channel,
    event: str,
    event_id: uuid.UUID,
    payload: dict[str, Any],
    case: FollowUpCase | None = None,
) -> Delivery:
    """An outbox row posting `event` (whose payload carries `event_id`) to a webhook channel."""
    return Delivery(
        kind=Delivery.Kind.WEBHOOK,
        case=case,
        purpose=Delivery.Purpose.CHANNEL,
        channel=channel,
        to=channel.url,
        event=event,
        event_id=event_id,
        payload=payload,
    )


def unsubscribed(person: Person) -> None:
    """Queue unsubscribe.created for Delighted-format webhooks."""
    webhooks = Channel.objects.filter(
        active=True, kind=Channel.Kind.WEBHOOK, format=Channel.Format.DELIGHTED
    )
    data = {
        "person": delighted_shapes.person_json(person),
        "unsubscribed_at": delighted_shapes.unix(person.unsubscribed_at),
    }
    Delivery.objects.bulk_create(
        _delighted_rows(list(webhooks), "unsubscribe.created", lambda: [data])
    )


def _delighted_rows(
    channels: list[Channel], event: str, items: Callable[[], list[dict[str, Any]]]
) -> list[Delivery]:
    """One Delighted-shaped webhook per item and subscribed channel.

    `items` is called only when some channel subscribes, so answers are not turned into
    Delighted's shape on every ingest when no receiver wants them.
    """
    wanted = [c for c in channels if event in c.subscribed_events]
    if not wanted:
        return []
    now = delighted_shapes.unix(timezone.now())
    rows = []
    for data in items():
        for channel in wanted:
            event_id = uuid.uuid4()
            envelope = {
                "event_type": event,
                "event_id": str(event_id),
                "event_data": data,
                "event_creation_time": now,
            }
            rows.append(_webhook_row(channel, event, event_id, envelope))
    return rows


def _tell(user: User, case: FollowUpCase, notice: str, mail: tuple[str, str], purpose: str) -> None:
    """An in-app notice for `user`, and the email `mail` (subject, body) if they have an address."""
    batch.add(Notification(user=user, case=case, text=notice))
    if user.email:
        alert_mail(case, user.email, *mail, purpose)


def owner_alert(case: FollowUpCase, reason: str = "new") -> None:
    """Tell the owner (email and in-app); an unassigned case is announced to the managers."""
    if case.owner is None:
        for user in _managers():
            batch.add(Notification(user=user, case=case, text=f"Unassigned: {headline(case)}"))
        return
    verb = {"new": "New", "assigned": "Assigned to you"}.get(reason, reason)
    subject, body = alert_email(case, "case.created")
    if reason == "assigned":
        subject = f"Assigned to you: {subject}"
    _tell(
        case.owner,
        case,
        f"{verb}: {headline(case)}",
        (subject, body),
        Delivery.Purpose.OWNER_ALERT,
    )


def sponsor_alert(case: FollowUpCase) -> None:
    """At the highest-value accounts, the executive sponsor hears of a detractor and watches it."""
    account = case.account
    sponsor = account.executive_sponsor if account else None
    if account is None or sponsor is None or not sponsor.is_active or sponsor == case.owner:
        return
    if not case.policy.rules.tell_sponsor(account.tier, account.arr_cents):
        return
    batch.add(FollowUpCase.watchers.through(followupcase=case, user=sponsor))
    subject, body = alert_email(case, "case.created")
    _tell(
        sponsor,
        case,
        f"Your account {account.name}: {headline(case)}",
        (f"Executive sponsor: {subject}"[:300], body),
        Delivery.Purpose.OWNER_ALERT,
    )
    case.log(
        Activity.Kind.NOTIFIED,
        f"executive sponsor {sponsor.display_name} told and added to the case",
        sponsor=sponsor.pk,
    )


def reply_alert(case: FollowUpCase, inbound: InboundMessage) -> None:
    """Tell the owner and the watchers the customer wrote back, with what they said."""
    text = f"Reply on {headline(case)}"
    body = f"{inbound.from_address} wrote:\n\n{inbound.text}\n\nOpen the case: {case_url(case)}"
    mail = (f"{text}: {inbound.subject}"[:300], body)
    for watcher in case.watchers.filter(is_active=True):
        if watcher.pk != case.owner_id:
            _tell(watcher, case, text, mail, Delivery.Purpose.OWNER_ALERT)
    if case.owner is None:
        owner_alert(case)
        return
    _tell(case.owner, case, text, mail, Delivery.Purpose.OWNER_ALERT)


def conversation_alert(case: FollowUpCase, what: str, text: str) -> None:
    """Tell the owner (or the managers of an unassigned case) of the follow-up
    conversation: it ended, with its summary, or the customer wrote after it ended."""
    notice = f"{what}: {headline(case)}"
    body = f"{text}\n\nOpen the case: {case_url(case)}"
    mail = (notice[:300], body)
    for user in _owner_or_managers(case):
        _tell(user, case, notice[:500], mail, Delivery.Purpose.OWNER_ALERT)


def _with_sponsor(case: FollowUpCase, people: list[User]) -> list[User]:
    """`people` and, at a top account (policy), its active executive sponsor."""
    account = case.account
    sponsor = account.executive_sponsor if account else None
    if (
        account is not None
        and sponsor is not None
        and sponsor.is_active
        and sponsor not in people
        and case.policy.rules.tell_sponsor(account.tier, account.arr_cents)
    ):
        return [*people, sponsor]
    return people


def urgent_alert(case: FollowUpCase, found: Sequence[tuple[str, str]]) -> None:
    """What cannot wait, at once: the owner (or the managers) and, at a top account, the
    executive sponsor, with the customer's words."""
    kinds = ", ".join(kind for kind, _ in found)
    notice = f"Urgent ({kinds}): {headline(case)}"
    lines = [f"{kind}: “{quote}”" for kind, quote in found]
    body = "\n".join([headline(case), "", *lines, "", f"Open the case: {case_url(case)}"])
    mail = (notice[:300], body)
    for user in _with_sponsor(case, _owner_or_managers(case)):
        _tell(user, case, notice[:500], mail, Delivery.Purpose.OWNER_ALERT)
    case_event(case, "case.urgent")


def leaving_alert(case: FollowUpCase, actor: User | None) -> None:
    """A person typed the customer as leaving: the owner (or the managers) and, at a top
    account, the executive sponsor (who watches the case from now on) hear at once, with
    the deadline the policy sets for leaving customers."""
    hours = case.policy.rules.type_sla_hours.get(FollowUpCase.DetractorType.LEAVING)
    by = actor.display_name if actor else "Someone"
    notice = f"Leaving: {headline(case)}"
    steps = case.policy.rules.type_playbooks.get(FollowUpCase.DetractorType.LEAVING, [])
    body = "\n".join(
        [
            f"{by} marked this customer as leaving.",
            headline(case),
            "",
            *(f"- {step}" for step in steps),
            *([f"\nCall them within {hours} hours of the answer."] if hours else []),
            "",
            f"Open the case: {case_url(case)}",
        ]
    )
    people = [u for u in _with_sponsor(case, _owner_or_managers(case)) if u != actor]
    for user in people:
        _tell(user, case, notice[:500], (notice[:300], body), Delivery.Purpose.OWNER_ALERT)
    sponsor = case.account.executive_sponsor if case.account else None
    if sponsor in people:
        FollowUpCase.watchers.through.objects.get_or_create(followupcase=case, user=sponsor)


def _managers() -> list[User]:
    """The active managers and admins, who watch the unassigned queue (once per batch)."""
    return batch.cached(
        "managers",
        lambda: list(
            User.objects.filter(is_active=True).filter(
                Q(role__in=[Role.MANAGER, Role.ADMIN]) | Q(is_superuser=True)
            )
        ),
    )


def _owner_or_managers(case: FollowUpCase) -> list[User]:
    """Who hears of a case: its owner, else the managers."""
    if case.owner is not None and case.owner.is_active:
        return [case.owner]
    return list(_managers())


def check_back_alert(case: FollowUpCase, response: Response) -> None:
    """A low check-back answer: the owner and their manager hear that the fix did not hold."""
    people = _owner_or_managers(case)
    manager = case.owner.manager if case.owner is not None else None
    if manager is not None and manager.is_active and manager not in people:
        people.append(manager)
    notice = f"Check-back {response.score}/10, case reopened: {headline(case)}"
    body = (
        f"{case.person.name or case.person.email} answered the check-back after the fix with "
        f"{response.score}/10."
        + (f"\n\n“{response.comment.strip()}”" if response.comment.strip() else "")
        + f"\n\nOpen the case: {case_url(case)}"
    )
    for user in people:
        _tell(user, case, notice[:500], (notice[:300], body), Delivery.Purpose.ESCALATION)


def promise_reminder(task: Task) -> None:
    """Tell a promise's owner (the case's, else the managers) it comes due soon."""
    case = task.case
    people = [task.owner] if task.owner is not None and task.owner.is_active else []
    people = people or _owner_or_managers(case)
    notice = f"Promise due {task.due_at:%a %d %b %H:%M} UTC: {task.title}"
    body = (
        f"You promised {case.person.name or case.person.email or 'the customer'}: {task.title}\n"
        f"Due: {task.due_at:%A %d %B %H:%M} UTC\n\n"
        f"Mark it done on the case when it is kept: {case_url(case)}"
    )
    for user in people:
        _tell(user, case, notice[:500], (notice[:300], body), Delivery.Purpose.OWNER_ALERT)


def promise_escalation(task: Task, recipients: Iterable[User]) -> None:
    """Tell the people an overdue promise escalated to."""
    case = task.case
    owner = task.owner or case.owner
    notice = f"Promise overdue: {task.title} ({headline(case)})"
    body = (
        f"{owner.display_name if owner else 'Nobody'} promised "
        f"{case.person.name or case.person.email or 'the customer'}: {task.title}\n"
        f"It was due {task.due_at:%A %d %B %H:%M} UTC and is not marked done.\n\n"
        f"Open the case: {case_url(case)}"
    )
    for user in recipients:
        _tell(user, case, notice[:500], (notice[:300], body), Delivery.Purpose.ESCALATION)


def escalation(case: FollowUpCase, recipients: Iterable[User]) -> None:
    """Tell the people a case escalated to (email and in-app), and the channels."""
    mail = alert_email(case, "case.escalated")
    notice = f"Escalated to you: {headline(case)} (overdue)"
    for user in recipients:
        _tell(user, case, notice, mail, Delivery.Purpose.ESCALATION)
    case_event(case, "case.escalated")


def sender_for(case: FollowUpCase, actor: User | None = None) -> str | None:
    """The real person customer mail comes from: who writes it, else the owner, else the default.

    None when neither is a real address (a no-reply default), in which case
    nothing automated is sent and the case says why.
    """
    for person in (actor, case.owner):
        if person is not None and person.email:
            return formataddr((person.display_name, person.email))
    name, address = outreach.parsed_address(settings.DEFAULT_FROM_EMAIL)
    if not address or NOREPLY.search(address):
        return None
    return formataddr((name, address))


def customer_email(
    case: FollowUpCase,
    subject: str,
    body: str,
    purpose: str,
    actor: User | None = None,
    announcement: Announcement | None = None,
    headers: dict[str, str] | None = None,
) -> Delivery | None:
    """Queue an email to the customer from a real person, replies coming back to the case
    (`headers`: threading, In-Reply-To and References)."""
    to = case.person.email
    problem = None
    if not to:
        problem = "the person has no email address"
    elif case.person.unsubscribed_at or case.person.bounced_at:
        problem = f"{to} has {'unsubscribed' if case.person.unsubscribed_at else 'bounced'}"
    sender = sender_for(case, actor)
    if sender is None:
        problem = problem or "no real sender: assign an owner or set DEFAULT_FROM_EMAIL to a person"
    if problem is not None:
        case.log(
            Activity.Kind.DELIVERY_FAILED, f"email not sent: {problem}", actor, subject=subject
        )
        return None
    assert to is not None and sender is not None
    return batch.add(
        Delivery(
            kind=Delivery.Kind.EMAIL,
            purpose=purpose,
            case=case,
            to=to,
            from_email=sender,
            reply_to=case.reply_address,
            subject=subject,
            body=body,
            announcement=announcement,
            headers=headers or {},
        )
    )


def acknowledgement(case: FollowUpCase, conversation_url: str = "") -> Delivery | None:
    """Queue the short acknowledgement of a case whose action waits for a person: from the
    owner, saying by when they will call or write (not the first touch; docs/closed-loop.md)."""
    subject, body = outreach.render_acknowledgement(case, conversation_url)
    return customer_email(case, subject, body, Delivery.Purpose.ACKNOWLEDGE)


def first_outreach(case: FollowUpCase, conversation_url: str = "") -> Delivery | None:
    """Queue the automated first email of the case's action, from its template, with the
    follow-up conversation's link when there is one."""
    subject, body = outreach.render_for(case, conversation_url=conversation_url)
    return customer_email(case, subject, body, Delivery.Purpose.OUTREACH)
