"""Outgoing messages as rows (a transactional outbox), and the channels that receive alerts.

A Delivery is written in the same transaction as the change it reports, so a
message exists if and only if its cause was committed. The worker claims
pending rows, sends them, and records every attempt.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

# The events a channel can subscribe to; payloads are documented in docs/webhooks.md.
EVENTS = (
    "response.created",
    "response.updated",
    "case.created",
    "case.updated",
    "case.escalated",
    "case.closed",
    "case.urgent",
    "conversation.completed",
)
# What Slack and email channels get when they name no events: the moments a person must act.
ALERT_EVENTS = ["case.created", "case.escalated", "case.urgent", "conversation.completed"]
# What a Delighted-format webhook can hear, named as Delighted named them (docs/delighted.md).
DELIGHTED_EVENTS = ("survey_response.created", "survey_response.updated", "unsubscribe.created")
# Our events that have a Delighted name.
DELIGHTED_NAMES = {
    "response.created": "survey_response.created",
    "response.updated": "survey_response.updated",
}


def _secret() -> str:
    return secrets.token_urlsafe(32)


class Channel(models.Model):
    """Where alerts about cases go: a Slack incoming webhook, a signed webhook, or an address.

    Filters narrow which cases it hears about; an empty filter means every detractor.
    """

    class Kind(models.TextChoices):
        SLACK = "slack"
        WEBHOOK = "webhook"
        EMAIL = "email"

    class Format(models.TextChoices):
        CLOSELOOP = "closeloop", "closeloop events"
        DELIGHTED = "delighted", "Delighted-format webhooks"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    format = models.CharField(
        max_length=10,
        choices=Format.choices,
        default=Format.CLOSELOOP,
        help_text="webhooks only: our events, or Delighted's for receivers built for Delighted",
    )
    name = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=500, blank=True)
    email = models.EmailField(blank=True)
    secret = models.CharField(max_length=64, default=_secret, help_text="signs webhook bodies")
    events = models.JSONField(default=list, blank=True, help_text="empty = the default set")
    bands = models.JSONField(default=list, blank=True, help_text="severe/moderate/mild")
    tiers = models.JSONField(default=list, blank=True)
    team = models.ForeignKey("team.Team", null=True, blank=True, on_delete=models.CASCADE)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name or f"{self.kind} {self.url or self.email}"

    @property
    def subscribed_events(self) -> list[str]:
        if self.events:
            return list(self.events)
        if self.format == self.Format.DELIGHTED:
            return list(DELIGHTED_EVENTS)
        return list(EVENTS) if self.kind == self.Kind.WEBHOOK else list(ALERT_EVENTS)

    @property
    def target(self) -> str:
        return self.email if self.kind == self.Kind.EMAIL else self.url


class Delivery(models.Model):
    """One message to send: an email, a Slack post or a webhook call."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        SLACK = "slack"
        WEBHOOK = "webhook"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    class Purpose(models.TextChoices):
        OUTREACH = "outreach", "Outreach to the customer"
        ACKNOWLEDGE = "acknowledge", "Acknowledgement to the customer"
        OWNER_ALERT = "owner_alert", "Alert to the owner"
        ESCALATION = "escalation"
        CHANNEL = "channel", "Channel event"
        FIX_SHIPPED = "fix_shipped", "Fix shipped"
        SURVEY = "survey", "Survey invitation"
        REMINDER = "reminder", "Survey reminder"
        REPORT = "report", "Monthly report"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    case = models.ForeignKey(
        "loop.FollowUpCase",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL)
    announcement = models.ForeignKey(
        "loop.Announcement",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    survey_request = models.ForeignKey(
        "surveys.SurveyRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    to = models.CharField(max_length=500, help_text="an email address or a URL")
    from_email = models.CharField(max_length=300, blank=True)
    reply_to = models.CharField(max_length=300, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="an HTML alternative to the text body")
    headers = models.JSONField(default=dict, blank=True, help_text="extra email headers")
    payload = models.JSONField(default=dict, blank=True, help_text="JSON body for Slack/webhooks")
    event = models.CharField(max_length=40, blank=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    permanent_failure = models.BooleanField(default=False)
    bounced = models.BooleanField(
        default=False, help_text="the recipient's address was refused for good"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # Only rows still to send are indexed, so the index stays small however many were sent.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="delivery_due_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to} ({self.status})"

    # Emails to a customer (not machine mail to our users): their unsubscribing stops
    # those still queued.
    TO_CUSTOMERS = (
        Purpose.SURVEY,
        Purpose.REMINDER,
        Purpose.OUTREACH,
        Purpose.ACKNOWLEDGE,
        Purpose.FIX_SHIPPED,
    )

    @classmethod
    def cancel_to_customer(cls, address: str, reason: str) -> int:
        """Fail every queued email to this customer address (waiting to go, or waiting to
        be retried) with `reason`; one already being sent cannot be called back. Returns
        how many were stopped."""
        return cls.objects.filter(
            kind=cls.Kind.EMAIL,
            purpose__in=cls.TO_CUSTOMERS,
            status=cls.Status.PENDING,
            to__iexact=address,
        ).update(status=cls.Status.FAILED, claim_token="", last_error=reason[:500])

    @property
    def message_id(self) -> str:
        """A stable Message-ID, so a receiver can tell a resend from a new message."""
        domain = settings.REPLY_ADDRESS.partition("@")[2] or "closeloop.invalid"
        return f"<delivery-{self.event_id}@{domain}>"


# Finds the delivery's id in a Message-ID (or In-Reply-To, References) we wrote.
DELIVERY_ID = re.compile(r"<delivery-([0-9a-f-]{36})@", re.I)


# Retry schedule: 30 s, 1 min, 2 min, … capped at an hour; after MAX_ATTEMPTS it fails for good.
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after `attempts` failed tries."""
    delay: timedelta = FIRST_RETRY * (2 ** max(0, attempts - 1))
    return min(LONGEST_RETRY, delay)


class Attempt(models.Model):
    """One try at sending a delivery, kept so a person can read what happened."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    permanent = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=100, blank=True, help_text="host:pid that tried")

    def __str__(self) -> str:
        return f"attempt at {self.at:%Y-%m-%d %H:%M:%S}: {'ok' if self.ok else self.error}"


# How long email waits after a set-up fault before it is tried again: 30 s, doubling,
# at most 15 minutes, so a fixed password is noticed within a quarter of an hour.
FIRST_PAUSE = timedelta(seconds=30)
LONGEST_PAUSE = timedelta(minutes=15)


class Outage(models.Model):
    """Our mail set-up failing, not a message: the server unreachable or refusing our login
    (scope "smtp"), or refusing one sender (scope "sender:<address>").

    While one is open, the emails it concerns wait without using up their attempts: the
    whole email queue for "smtp", that sender's emails for a sender. It closes when an
    email goes through again. Admins are told in the app, and the Mail page lists it.
    """

    scope = models.CharField(max_length=320)
    error = models.TextField()
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    retry_at = models.DateTimeField(default=timezone.now)
    tries = models.PositiveIntegerField(default=1)
    held = models.PositiveIntegerField(default=0, help_text="emails held back by it so far")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope"],
                condition=models.Q(resolved_at__isnull=True),
                name="outage_one_open_per_scope",
            )
        ]

    def __str__(self) -> str:
        return f"{self.describe()}: {self.error}"

    def describe(self) -> str:
        """What is failing, in words for the Mail page."""
        if self.scope.startswith("sender:"):
            return f"the mail server refuses to send as {self.scope.partition(':')[2]}"
        return "the mail server cannot be used"

    @classmethod
    def report(cls, scope: str, error: str, held: int, now: datetime) -> tuple[Outage, bool]:
        """Record that `scope` failed again (opening an outage if none is open): when to
        try next, backing off. Returns the outage and whether it is new."""
        found = Outage.objects.select_for_update().filter(scope=scope, resolved_at=None).first()
        if found is None:
            try:
                with transaction.atomic():  # another worker may open the same one meanwhile
                    outage = Outage.objects.create(
                        scope=scope, error=error[:2000], started_at=now, last_seen_at=now
                    )
            except IntegrityError:
                return cls.report(scope, error, held, now)
            created = True
        else:
            outage, created = found, False
            outage.tries += 1
        outage.error = error[:2000]
        outage.last_seen_at = now
        outage.held += held
        pause = min(LONGEST_PAUSE, FIRST_PAUSE * 2 ** min(outage.tries - 1, 10))
        outage.retry_at = now + pause
        outage.save()
        return outage, created

    @classmethod
    def server_paused(cls, now: datetime) -> bool:
        """Whether the mail server's outage says to wait before trying again."""
        return Outage.objects.filter(scope="smtp", resolved_at=None, retry_at__gt=now).exists()

    @classmethod
    def resolve(cls, scopes: set[str], now: datetime) -> list[Outage]:
        """Close the open outages among `scopes`: an email just went through them."""
        open_ = list(Outage.objects.filter(scope__in=scopes, resolved_at=None))
        if open_:
            Outage.objects.filter(pk__in=[o.pk for o in open_]).update(resolved_at=now)
        return open_
