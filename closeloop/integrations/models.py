"""What other systems told closeloop: each event as received (once per sender's id), and
the account signals it became (a failed payment, a downgrade, a scheduled cancellation)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils import timezone

from closeloop.surveys.models import Account, Person


class IntegrationEvent(models.Model):
    """One event from a sender, stored before anything is done with it.

    `status` says what became of it: applied to its account; unmatched (no account found
    for its customer yet: it waits on the integrations page to be mapped); stale (older
    than what was already applied for the same object, so it changed nothing); ignored
    (a type closeloop does not use).
    """

    class Source(models.TextChoices):
        STRIPE = "stripe"
        ZENDESK = "zendesk"
        INTERCOM = "intercom"
        API = "api"

    class Status(models.TextChoices):
        APPLIED = "applied"
        UNMATCHED = "unmatched"
        STALE = "stale"
        IGNORED = "ignored"

    source = models.CharField(max_length=20, choices=Source.choices)
    event_id = models.CharField(max_length=255, help_text="the sender's id for the event")
    type = models.CharField(max_length=100)
    occurred_at = models.DateTimeField(help_text="when the sender says it happened")
    object_id = models.CharField(max_length=255, blank=True, help_text="e.g. a subscription id")
    customer_ref = models.CharField(
        max_length=255, blank=True, help_text="the sender's customer id, to map it to an account"
    )
    email = models.CharField(max_length=254, blank=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices)
    note = models.CharField(max_length=300, blank=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    received_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="integration_event_once")
        ]
        indexes = [
            models.Index(fields=["source", "status", "customer_ref"], name="event_unmatched"),
            models.Index(fields=["source", "object_id", "occurred_at"], name="event_object"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.type} {self.event_id}"


@dataclass(frozen=True)
class Received:
    """What a webhook delivery became: its stored event, and whether it was new (a
    replayed event id gives the event stored the first time)."""

    event: IntegrationEvent
    new: bool


class AccountSignal(models.Model):
    """A sign from outside NPS that an account may leave (docs/integrations.md)."""

    class Kind(models.TextChoices):
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        DOWNGRADE = "downgrade"
        CANCEL_SCHEDULED = "cancel_scheduled", "Cancellation scheduled"
        TRIAL_ENDING = "trial_ending", "Trial ending"
        DISPUTE = "dispute", "Payment disputed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="signals")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    at = models.DateTimeField()
    detail = models.CharField(max_length=300, blank=True)
    event = models.ForeignKey(
        IntegrationEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["account", "at"], name="account_signal_at")]

    def __str__(self) -> str:
        return f"{self.kind} at account {self.account_id}"


class UsageIdentity(models.Model):
    """Who a product-analytics id is (docs/integrations.md, "Product usage"): a Segment
    `userId` (kind user; an `anonymousId` is kept as `anon:<id>`) or `groupId` (kind
    group), and the person and account it was matched to. A user's account comes from its
    group (a `group` call or a track's `context.groupId`), its person (an `identify` whose
    email or id is known), or someone mapping it on the integrations page."""

    class Kind(models.TextChoices):
        USER = "user"
        GROUP = "group"

    source = models.CharField(max_length=20, default="segment")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    ref = models.CharField(max_length=255, help_text="the sender's id for the user or group")
    group_ref = models.CharField(
        max_length=255, blank=True, help_text="a user's group, as the sender last said"
    )
    person = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage_ids"
    )
    traits = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "kind", "ref"], name="usage_identity_once")
        ]
        indexes = [models.Index(fields=["kind", "group_ref"], name="usage_identity_group")]

    def __str__(self) -> str:
        return f"{self.source} {self.kind} {self.ref}"


class UsageEvent(models.Model):
    """One product event (a Segment `track`, `page` or `screen`), stored once per the
    sender's message id: what the usage figures are counted from, kept to be looked at."""

    source = models.CharField(max_length=20, default="segment")
    message_id = models.CharField(max_length=255)
    identity = models.ForeignKey(UsageIdentity, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=200)
    at = models.DateTimeField(help_text="when the sender says it happened")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "message_id"], name="usage_event_once")
        ]
        indexes = [models.Index(fields=["identity", "at"], name="usage_event_at")]

    def __str__(self) -> str:
        return f"{self.event} at {self.at:%Y-%m-%d %H:%M}"


class UsageDay(models.Model):
    """How many events a user sent on one day (UTC): the roll-up the usage figures read,
    kept up to date as events arrive."""

    identity = models.ForeignKey(UsageIdentity, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    events = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["identity", "day"], name="usage_day_once")]
        indexes = [models.Index(fields=["day"], name="usage_day_day")]

    def __str__(self) -> str:
        return f"{self.events} events on {self.day}"


class Ticket(models.Model):
    """A support ticket (or an Intercom conversation) as its desk last described it
    (integrations/tickets.py): one row per the sender's ticket id."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    class Priority(models.TextChoices):
        LOW = "low"
        NORMAL = "normal"
        HIGH = "high"
        URGENT = "urgent"

    source = models.CharField(max_length=20, choices=IntegrationEvent.Source.choices)
    ticket_id = models.CharField(max_length=255)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    org_ref = models.CharField(max_length=255, blank=True, help_text="the desk's organisation")
    email = models.CharField(max_length=254, blank=True, help_text="the requester's email")
    subject = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(max_length=6, choices=Priority.choices, blank=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    reopens = models.PositiveIntegerField(default=0)
    csat = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="the customer's rating, 1–5"
    )
    updated_at = models.DateTimeField(help_text="when the desk last changed it")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "ticket_id"], name="ticket_once")]
        indexes = [
            models.Index(fields=["account", "status"], name="ticket_account"),
            models.Index(fields=["source", "org_ref"], name="ticket_org"),
        ]

    def __str__(self) -> str:
        return f"{self.source} ticket {self.ticket_id}"


class HubSpotSync(models.Model):
    """One HubSpot sync (integrations/hubspot.py): what it read and wrote, and its errors."""

    class Status(models.TextChoices):
        WAITING = "waiting"
        RUNNING = "running"
        DONE = "done"
        PARTIAL = "partial", "Done with errors"
        FAILED = "failed"

    requested_at = models.DateTimeField(default=timezone.now)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.WAITING)
    companies = models.PositiveIntegerField(default=0, help_text="companies read")
    skipped = models.PositiveIntegerField(default=0, help_text="unmatched and not customers")
    created = models.PositiveIntegerField(default=0, help_text="accounts created")
    updated = models.PositiveIntegerField(default=0, help_text="accounts changed")
    pushed = models.PositiveIntegerField(default=0, help_text="companies written")
    notes = models.PositiveIntegerField(default=0, help_text="notes added")
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["finished_at"], name="hubspot_sync_finished")]

    def __str__(self) -> str:
        return f"HubSpot sync of {self.requested_at:%Y-%m-%d %H:%M} ({self.status})"

    MAX_ERRORS = 200

    def error(self, text: str) -> None:
        """Keep one error of this run (the first MAX_ERRORS, then a count)."""
        if len(self.errors) < self.MAX_ERRORS:
            self.errors.append(text)
        elif len(self.errors) == self.MAX_ERRORS:
            self.errors.append("… and more errors")


class HubSpotNote(models.Model):
    """A note written on a HubSpot company about a case, once per case and kind."""

    class Kind(models.TextChoices):
        CLOSED = "closed"
        CONVERSATION = "conversation"

    case = models.ForeignKey("loop.FollowUpCase", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    note_id = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "kind"], name="hubspot_note_once")]

    def __str__(self) -> str:
        return f"HubSpot note {self.note_id} on case {self.case_id} ({self.kind})"
