"""Product usage from Segment (docs/integrations.md, "Product usage").

closeloop speaks Segment's HTTP tracking API: a team adds it as a destination (the
Webhooks destination posts each message, signed in `X-Signature`) or points Segment's
own libraries at it (they post `{"batch": [...]}` to `<host>/v1/batch` with the write
key as the Basic-auth user name). The calls used:

- `identify`: a user id and its traits; the email (or the user id as a person's
  external id) says which person, and so which account, the user is;
- `group`: a user belongs to a group; the group id is an account's external id (or is
  mapped to one on the integrations page); a `seats` trait is the seats paid for;
- `track`, `page`, `screen`: activity, counted per user and day (`UsageDay`) for the
  usage figures (`usage.py`); a track's `context.groupId` names its group too.
  `alias` is accepted and not used.

A whole request is checked before anything is stored: a message that cannot be used
refuses the request, naming `batch[i].<field>`, and nothing of it is kept. Each event is
stored once per `messageId` (a message without one is identified by its content), so a
retried batch adds nothing. Users and groups not known yet are kept and counted; their
events count for an account as soon as they are matched to one.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from closeloop.core.errors import FieldError
from closeloop.surveys.models import Account, Person
from closeloop.surveys.schemas import when_it_happened

from .matching import text
from .models import UsageDay, UsageEvent, UsageIdentity
from .usage import SEATS_KEY

SOURCE = "segment"
GROUP_KEY = "segment_group_id"
MAX_BATCH_BYTES = 500 * 1024  # Segment's own limit for a batch request
MAX_MESSAGE_BYTES = 32 * 1024  # and for one message in it
SEEN_EVERY = timedelta(minutes=1)  # how stale an unmatched user's last-seen time may be
ACTIVITY = {"track", "page", "screen"}
TYPES = ACTIVITY | {"identify", "group", "alias"}
USER, GROUP = UsageIdentity.Kind.USER, UsageIdentity.Kind.GROUP


@dataclass
class Message:
    type: str
    user: str
    at: datetime
    message_id: str
    event: str = ""
    group: str = ""
    traits: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    received: int = 0
    new_events: int = 0
    unmatched_users: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": True,
            "received": self.received,
            "new_events": self.new_events,
            "unmatched_users": self.unmatched_users,
        }


def messages_of(body: Any, call: str | None = None) -> list[Any]:
    """The messages of a request body: a batch call's list, or the one message (whose
    type the path may give, as Segment's `/v1/track` does)."""
    if not isinstance(body, dict):
        raise FieldError("body", 'a JSON object: one message, or {"batch": [...]}')
    if call == "batch" or (call is None and "batch" in body):
        batch = body.get("batch")
        if not isinstance(batch, list):
            raise FieldError("batch", "a list of messages")
        return batch
    if call is not None and "type" not in body:
        return [{**body, "type": call}]
    return [body]


def _when(message: dict[str, Any], where: str, now: datetime) -> datetime:
    """When it happened: `timestamp`, corrected for the sender's clock by `sentAt` as
    Segment does (its receipt time less the time between happening and sending)."""
    raw = message.get("timestamp") or message.get("originalTimestamp")
    if raw is None:
        return now
    at = parse_datetime(raw) if isinstance(raw, str) else None
    if at is None:
        raise FieldError(f"{where}.timestamp", "not an ISO 8601 time")
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    sent_raw = message.get("sentAt")
    sent = parse_datetime(sent_raw) if isinstance(sent_raw, str) else None
    if sent is not None:
        sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)
        at = now - (sent - at)
    try:
        found = when_it_happened(at)
    except ValueError as exc:
        raise FieldError(f"{where}.timestamp", str(exc)) from None
    assert found is not None  # a moment in, a moment out
    return found


def parse(raw: Any, i: int, now: datetime) -> Message:
    """One message, checked; FieldError naming `batch[i].<field>`."""
    where = f"batch[{i}]"
    if not isinstance(raw, dict):
        raise FieldError(where, "a message must be a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in TYPES:
        raise FieldError(f"{where}.type", f"one of {', '.join(sorted(TYPES))}")
    user = text(raw.get("userId"), 200)
    if not user:
        anonymous = text(raw.get("anonymousId"), 200)
        user = f"anon:{anonymous}" if anonymous else ""
    if not user:
        raise FieldError(f"{where}.userId", "a userId or an anonymousId is required")
    message = Message(type=kind, user=user, at=_when(raw, where, now), message_id="")
    message_id = raw.get("messageId")
    if message_id is None:
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode())
        message.message_id = "h:" + digest.hexdigest()
    elif isinstance(message_id, str) and 0 < len(message_id) <= 255:
        message.message_id = message_id
    else:
        raise FieldError(f"{where}.messageId", "a string of 1 to 255 characters")
    context = raw.get("context")
    context = context if isinstance(context, dict) else {}
    if kind == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            raise FieldError(f"{where}.event", "a track call names its event")
        message.event = event.strip()[:200]
    elif kind in ("page", "screen"):
        message.event = f"{kind}: {text(raw.get('name'), MAX_MESSAGE_BYTES) or 'unnamed'}"[:200]
    if kind == "group":
        message.group = text(raw.get("groupId"), 200)
        if not message.group:
            raise FieldError(f"{where}.groupId", "a group call names its group")
    else:
        message.group = text(context.get("groupId"), 200)
    traits = raw.get("traits")
    if kind in ("identify", "group") and traits is not None:
        if not isinstance(traits, dict):
            raise FieldError(f"{where}.traits", "an object")
        message.traits = traits
    return message


def _sized(raw: list[Any]) -> None:
    for i, message in enumerate(raw):
        if len(json.dumps(message, default=str)) > MAX_MESSAGE_BYTES:
            raise FieldError(f"batch[{i}]", "larger than 32 KB, Segment's limit for a message")


def ingest(raw: list[Any], now: datetime | None = None) -> Result:
    """Check every message, then store what they say in one transaction (retried once
    when a concurrent request stored the same events first)."""
    now = now or timezone.now()
    _sized(raw)
    found = [parse(message, i, now) for i, message in enumerate(raw)]
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _store(found, now)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _bound_cursor() -> Any:
    """A psycopg cursor on Django's connection (its transaction) that binds parameters on
    the server: a batch's arrays go as parameters, not quoted into the SQL text, which
    costs Django's client-side binding most of a batch's time (measured in `make bench`)."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _identities(kind: str, refs: Iterable[str], now: datetime) -> dict[str, UsageIdentity]:
    """The identities of `refs`, those not seen before created (one query each way)."""
    wanted = set(refs)
    if not wanted:
        return {}
    mine = UsageIdentity.objects.filter(source=SOURCE, kind=kind)
    found = {identity.ref: identity for identity in mine.filter(ref__any=wanted)}
    missing = wanted - found.keys()
    if missing:
        UsageIdentity.objects.bulk_create(
            [
                UsageIdentity(source=SOURCE, kind=kind, ref=ref, first_seen_at=now)
                for ref in sorted(missing)
            ],
            ignore_conflicts=True,  # another request may create the same one meanwhile
        )
        found.update((identity.ref, identity) for identity in mine.filter(ref__any=missing))
    return found


def group_accounts(refs: Iterable[str]) -> dict[str, Account]:
    """The accounts group ids name: their external ids, or group ids mapped to them."""
    wanted = list(refs)
    if not wanted:
        return {}
    found: dict[str, Account] = {}
    for account in Account.objects.filter(
        Q(external_id__in=wanted) | Q(**{f"properties__{GROUP_KEY}__in": wanted})
    ):
        for ref in (account.properties.get(GROUP_KEY), account.external_id):
            if isinstance(ref, str) and ref in wanted:
                found[ref] = account
    return found


def person_of(ref: str, traits: dict[str, Any]) -> Person | None:
    email = text(traits.get("email"), MAX_MESSAGE_BYTES).lower()
    if email:
        person = Person.objects.filter(email__iexact=email).first()
        if person is not None:
            return person
    return Person.objects.filter(external_id=ref).first()


def _store(found: list[Message], now: datetime) -> Result:
    """Identities first (what identify and group calls say, and the accounts they
    lead to), then the activity: only identities that changed are written, and
    unmatched users' last-seen time (the integrations page lists them by it)."""
    users = _identities(USER, (m.user for m in found), now)
    groups = _identities(GROUP, (m.group for m in found if m.group), now)
    changed: dict[int, UsageIdentity] = {}
    unplaced = [g.ref for g in groups.values() if g.account_id is None]
    for ref, account in group_accounts(unplaced).items():
        groups[ref].account = account
        changed[groups[ref].pk] = groups[ref]
    for message in found:
        user = users[message.user]
        group = groups.get(message.group) if message.group else None
        if message.type == "identify":
            user.traits = {**user.traits, **message.traits}
            person = person_of(user.ref, user.traits)
            if person is not None:
                user.person = person
                user.account_id = user.account_id or person.account_id
            changed[user.pk] = user
        if group is not None:
            if message.type == "group":
                group.traits = {**group.traits, **message.traits}
                changed[group.pk] = group
            if user.group_ref != group.ref:
                user.group_ref = group.ref
                changed[user.pk] = user
            if group.account_id is not None and user.account_id is None:
                user.account_id = group.account_id
                changed[user.pk] = user
    for identity in changed.values():
        identity.last_seen_at = now
    if changed:
        UsageIdentity.objects.bulk_update(
            [changed[pk] for pk in sorted(changed)],
            ["traits", "person", "account", "group_ref", "last_seen_at"],
        )
    for group in groups.values():
        if group.pk in changed:
            _seats(group)
    # Unmatched users' last-seen time orders the integrations page: to the minute is
    # enough, so a busy sender does not rewrite the same rows on every batch.
    stale = now - SEEN_EVERY
    waiting = sorted(
        u.pk
        for u in users.values()
        if u.account_id is None
        and u.pk not in changed
        and (u.last_seen_at is None or u.last_seen_at < stale)
    )
    if waiting:
        UsageIdentity.objects.filter(pk__in=waiting).update(last_seen_at=now)
    activity = [m for m in found if m.type in ACTIVITY]
    new = _new_events(activity, users, now)
    _roll_up(new, users)
    return Result(
        received=len(found),
        new_events=len(new),
        unmatched_users=sum(1 for u in users.values() if u.account_id is None),
    )


def _seats(group: UsageIdentity) -> None:
    """A group's `seats` trait is what its account pays for."""
    seats = group.traits.get(SEATS_KEY)
    if group.account is None or isinstance(seats, bool) or not isinstance(seats, int | float):
        return
    account = group.account
    if seats >= 0 and account.properties.get(SEATS_KEY) != int(seats):
        account.properties = {**account.properties, SEATS_KEY: int(seats)}
        account.save(update_fields=["properties", "updated_at"])


def _new_events(
    activity: list[Message], users: dict[str, UsageIdentity], now: datetime
) -> list[Message]:
    """The activity not stored before (nor twice in this batch), now stored."""
    ids = {m.message_id for m in activity}
    seen = set(
        UsageEvent.objects.filter(source=SOURCE, message_id__any=ids).values_list(
            "message_id", flat=True
        )
    )
    new = []
    for message in activity:
        if message.message_id not in seen:
            seen.add(message.message_id)
            new.append(message)
    if connection.vendor == "postgresql":
        # One statement with four array parameters: PostgreSQL parses a short query
        # instead of one with a placeholder per value (measured in `make bench`).
        table = UsageEvent._meta.db_table
        with _bound_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (source, message_id, identity_id, event, at, "  # noqa: S608
                "received_at) SELECT %s, m, i, e, a, %s FROM unnest("
                "%s::varchar[], %s::bigint[], %s::varchar[], %s::timestamptz[]) AS t(m, i, e, a)",
                [
                    SOURCE,
                    now,
                    [m.message_id for m in new],
                    [users[m.user].pk for m in new],
                    [m.event for m in new],
                    [m.at for m in new],
                ],
            )
        return new
    UsageEvent.objects.bulk_create(
        [
            UsageEvent(
                source=SOURCE,
                message_id=m.message_id,
                identity_id=users[m.user].pk,
                event=m.event,
                at=m.at,
                received_at=now,
            )
            for m in new
        ],
        batch_size=1000,
    )
    return new


def _roll_up(new: list[Message], users: dict[str, UsageIdentity]) -> None:
    """Add the new events to each user's day, in one statement (in key order, so two
    requests adding to the same days cannot deadlock)."""
    days: dict[tuple[int, date], list[Any]] = defaultdict(lambda: [0, None])
    for message in new:
        key = (users[message.user].pk, message.at.date())
        row = days[key]
        row[0] += 1
        row[1] = message.at if row[1] is None or message.at > row[1] else row[1]
    if not days:
        return
    ops = connection.ops
    table = UsageDay._meta.db_table
    rows = sorted(days.items())
    update = (
        f"ON CONFLICT (identity_id, day) DO UPDATE SET "
        f"events = {table}.events + excluded.events, "
        f"last_at = CASE WHEN excluded.last_at > {table}.last_at "
        f"THEN excluded.last_at ELSE {table}.last_at END"
    )
    if connection.vendor == "postgresql":
        with _bound_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (identity_id, day, events, last_at) "  # noqa: S608
                "SELECT * FROM unnest(%s::bigint[], %s::date[], %s::int[], %s::timestamptz[]) "
                + update,
                [
                    [identity for (identity, _), _ in rows],
                    [day for (_, day), _ in rows],
                    [count for _, (count, _) in rows],
                    [last for _, (_, last) in rows],
                ],
            )
        return
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
        params: list[Any] = []
        for (identity, day), (count, last) in chunk:
            params += [
                identity,
                ops.adapt_datefield_value(day),
                count,
                ops.adapt_datetimefield_value(last),
            ]
        # The table name is the model's own; the values are parameters.
        sql = f"INSERT INTO {table} (identity_id, day, events, last_at) VALUES {values} " + update  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def map_identity(kind: str, ref: str, account: Account) -> int:
    """Someone says which account a user or group is. A group is remembered on the
    account (so its next events find it) and takes its unmatched users along. How many
    users now count for the account."""
    if kind not in (USER, GROUP):
        raise FieldError("kind", "user or group")
    identity = UsageIdentity.objects.filter(source=SOURCE, kind=kind, ref=ref).first()
    if identity is None:
        raise FieldError("ref", f"no Segment {kind} {ref!r} has been seen")
    if kind == GROUP:
        taken = Account.objects.filter(**{f"properties__{GROUP_KEY}": ref})
        if taken.exclude(pk=account.pk).exists():
            raise FieldError("ref", f"group {ref} is already mapped to {taken.first()}")
    identity.account = account
    identity.save(update_fields=["account"])
    if kind == USER:
        return 1
    account.properties = {**account.properties, GROUP_KEY: ref}
    account.save(update_fields=["properties", "updated_at"])
    _seats(identity)
    return UsageIdentity.objects.filter(
        source=SOURCE, kind=USER, group_ref=ref, account__isnull=True
    ).update(account=account)
