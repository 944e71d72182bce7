"""Who hears about a case, and what they are told: rows in the outbox, never sends.

Every function here writes Delivery (or Notification) rows inside the caller's
transaction; the worker sends them after commit. The worker reports back
through `deliveries_sent` and `delivery_failed`, which put the outcome on the
case's timeline.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from closeloop.delivery.models import DELIGHTED_NAMES, Channel, Delivery, Outage
from closeloop.surveys import delighted_shapes
from closeloop.surveys.models import Person, Response
from closeloop.team.models import Role, User

from . import batch, outreach
from .models import Activity, Announcement, FollowUpCase, InboundMessage, Notification

NOREPLY = re.compile(r"no[-_.]?reply|do[-_.]?not[-_.]?reply", re.IGNORECASE)


def case_url(case: FollowUpCase) -> str:
    return f"{settings.SITE_URL}/cases/{case.pk}/"


def money(cents: int, currency: str = "USD") -> str:
    return f"{currency} {cents / 100:,.0f}"


def _when(case: FollowUpCase) -> str:
    return f"{case.due_at:%a %d %b %H:%M} UTC" if case.due_at else "no deadline"


def _headline(case: FollowUpCase) -> str:
    who = case.person.name or case.person.email or str(case.person)
    where = f" at {case.account.name}" if case.account else ""
    return f"{case.loop.capitalize()} {case.score}/10 from {who}{where}"


# --- JSON shapes shared by webhooks and the API ------------------------------------------


def person_json(case: FollowUpCase) -> dict[str, Any]:
    p = case.person
    return {"id": p.pk, "email": p.email, "name": p.name, "external_id": p.external_id}


def account_json(case: FollowUpCase) -> dict[str, Any] | None:
    a = case.account
    if a is None:
        return None
    return {
        "id": a.pk,
        "external_id": a.external_id,
        "name": a.name,
        "tier": a.tier,
        "arr": a.arr_cents / 100,
        "currency": a.currency,
    }


def user_json(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.display_name, "email": user.email}


def case_json(case: FollowUpCase) -> dict[str, Any]:
    """The case as webhooks carry it (documented in docs/webhooks.md)."""
    r = case.response
    return {
        "id": case.pk,
        "url": case_url(case),
        "loop": case.loop,
        "status": case.status,
        "resolution": case.resolution or None,
        "score": case.score,
        "previous_score": case.previous_score,
        "band": case.band or None,
        "high_value": case.high_value,
        "action": case.action,
        "rule": case.rule,
        "policy_version": case.policy.version,
        "priority": round(case.priority, 1),
        "due_at": _iso(case.due_at),
        "first_touch_at": _iso(case.first_touch_at),
        "escalation_level": case.escalation_level,
        "overdue": case.is_overdue,
        "owner": user_json(case.owner),
        "person": person_json(case),
        "account": account_json(case),
        "response": {
            "id": r.pk,
            "score": r.score,
            "comment": r.comment,
            "created_at": _iso(r.created_at),
            "themes": r.themes_json(),
            "sentiment": r.sentiment_json(),
        },
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "closed_at": _iso(case.closed_at),
    }


def response_json(response: Response) -> dict[str, Any]:
    return {
        "id": response.pk,
        "score": response.score,
        "category": response.category.value,
        "comment": response.comment,
        "source": response.source,
        "person": {"id": response.person_id, "email": response.person.email},
        "account_id": response.account_id,
        "created_at": _iso(response.created_at),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _event_payload(event: str, event_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(event_id), "type": event, "created_at": _iso(timezone.now()), "data": data}


# --- channels ------------------------------------------------------------------------------


def _channels_for(case: FollowUpCase, event: str) -> list[Channel]:
    """Active channels subscribed to `event` whose filters match the case (detractors only)."""
    if case.loop != FollowUpCase.Loop.DETRACTOR:
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
        payload = _event_payload(event, event_id, {"case": case_json(case)})
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
        _alert_mail(case, channel.email, subject, body, purpose, **common)


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
                _webhook_row(channel, event, event_id, _event_payload(event, event_id, data))
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


# --- messages --------------------------------------------------------------------------------


def _facts(case: FollowUpCase) -> list[tuple[str, str]]:
    account = case.account
    facts = [
        (
            "Score",
            f"{case.score}/10"
            + (f" (was {case.previous_score})" if case.previous_score is not None else ""),
        ),
        ("Account", account.name if account else "—"),
        ("ARR", money(account.arr_cents, account.currency) if account else "—"),
        ("Tier", (account.tier or "—") if account else "—"),
        ("Owner", case.owner.display_name if case.owner else "unassigned"),
        ("Due", _when(case)),
        ("Action", case.action_enum.label),
    ]
    return facts


def slack_message(case: FollowUpCase, event: str) -> dict[str, Any]:
    """A Block Kit message with the facts an owner needs and a button to the case."""
    title = _headline(case)
    if event == "case.escalated":
        title = f"Escalated (level {case.escalation_level}): {title}"
    elif event == "case.closed":
        title = f"Closed ({case.get_resolution_display()}): {title}"
    comment = case.response.comment.strip() or "(no comment)"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{k}*\n{_slack_text(v)}"} for k, v in _facts(case)[:10]
            ],
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "> " + _slack_escape(comment)[:2900]},
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open case"},
                    "url": case_url(case),
                }
            ],
        },
    ]
    # The fallback text shows in notifications: escaped too, so a comment's "<!channel>"
    # or "<@U123>" never pings anyone.
    return {"text": _slack_text(f"{title}: {comment[:200]}"), "blocks": blocks}


def _slack_text(text: str) -> str:
    """Text as Slack shows it literally: `&`, `<` and `>` escaped (no mentions, no links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_escape(text: str) -> str:
    """A quoted block of text: escaped, each line quoted."""
    return _slack_text(text).replace("\n", "\n> ")


def alert_email(case: FollowUpCase, event: str) -> tuple[str, str]:
    """Subject and plain-text body of an alert to one of our users."""
    prefix = {"case.escalated": "Escalated: ", "case.closed": "Closed: "}.get(event, "")
    subject = f"{prefix}{_headline(case)} — due {_when(case)}"
    lines = [_headline(case), ""]
    lines += [f"{k}: {v}" for k, v in _facts(case)]
    lines += ["", "Comment:", case.response.comment.strip() or "(no comment)", ""]
    steps = case.playbook
    if steps:
        lines += ["Playbook:"] + [f"- {s}" for s in steps] + [""]
    lines += [f"Open the case: {case_url(case)}"]
    return subject, "\n".join(lines)


def _alert_mail(
    case: FollowUpCase, to: str, subject: str, body: str, purpose: str, **extra: Any
) -> None:
    """Queue an alert email to one of our users (or a channel's address)."""
    batch.add(
        Delivery(
            kind=Delivery.Kind.EMAIL,
            purpose=purpose,
            case=case,
            to=to,
            from_email=settings.DEFAULT_FROM_EMAIL,
            subject=subject,
            body=body,
            **extra,
        )
    )


def _tell(user: User, case: FollowUpCase, notice: str, mail: tuple[str, str], purpose: str) -> None:
    """An in-app notice for `user`, and the email `mail` (subject, body) if they have an address."""
    batch.add(Notification(user=user, case=case, text=notice))
    if user.email:
        _alert_mail(case, user.email, *mail, purpose)


def owner_alert(case: FollowUpCase, reason: str = "new") -> None:
    """Tell the owner (email and in-app); an unassigned case is announced to the managers."""
    if case.owner is None:
        managers = batch.cached(
            "managers",
            lambda: list(
                User.objects.filter(is_active=True).filter(
                    Q(role__in=[Role.MANAGER, Role.ADMIN]) | Q(is_superuser=True)
                )
            ),
        )
        for user in managers:
            batch.add(Notification(user=user, case=case, text=f"Unassigned: {_headline(case)}"))
        return
    verb = {"new": "New", "assigned": "Assigned to you"}.get(reason, reason)
    subject, body = alert_email(case, "case.created")
    if reason == "assigned":
        subject = f"Assigned to you: {subject}"
    _tell(
        case.owner,
        case,
        f"{verb}: {_headline(case)}",
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
        f"Your account {account.name}: {_headline(case)}",
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
    text = f"Reply on {_headline(case)}"
    body = f"{inbound.from_address} wrote:\n\n{inbound.text}\n\nOpen the case: {case_url(case)}"
    mail = (f"{text}: {inbound.subject}"[:300], body)
    for watcher in case.watchers.filter(is_active=True):
        if watcher.pk != case.owner_id:
            _tell(watcher, case, text, mail, Delivery.Purpose.OWNER_ALERT)
    if case.owner is None:
        owner_alert(case)
        return
    _tell(case.owner, case, text, mail, Delivery.Purpose.OWNER_ALERT)


def escalation(case: FollowUpCase, recipients: Iterable[User]) -> None:
    """Tell the people a case escalated to (email and in-app), and the channels."""
    mail = alert_email(case, "case.escalated")
    notice = f"Escalated to you: {_headline(case)} (overdue)"
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
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
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
) -> Delivery | None:
    """Queue an email to the customer from a real person, replies coming back to the case."""
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
        )
    )


def first_outreach(case: FollowUpCase) -> Delivery | None:
    """Queue the automated first email of the case's action, from its template."""
    subject, body = outreach.render_for(case)
    return customer_email(case, subject, body, Delivery.Purpose.OUTREACH)


# --- the worker reports back -------------------------------------------------------------------


def deliveries_sent(deliveries: Sequence[Delivery]) -> None:
    """Put sent messages on their cases' timelines; customer outreach is the first touch.

    The first touches of a whole batch are written together (`FollowUpCase.contacted`).
    """
    reached: dict[int, FollowUpCase] = {}
    for delivery in deliveries:
        case = delivery.case
        if case is None:
            continue
        if delivery.purpose in (Delivery.Purpose.OUTREACH, Delivery.Purpose.FIX_SHIPPED):
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
    text = f"Email is held back: {outage.describe()} ({outage.error})"[:500]
    Notification.objects.bulk_create([Notification(user=u, text=text) for u in User.admins()])


def mail_outage_over(outage: Outage) -> None:
    """Email goes out again: tell the admins who were told it stopped."""
    text = f"Email goes out again; before, {outage.describe()} ({outage.held} emails waited)"
    Notification.objects.bulk_create([Notification(user=u, text=text[:500]) for u in User.admins()])
