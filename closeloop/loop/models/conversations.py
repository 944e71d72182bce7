"""The follow-up conversation of a case (docs/domain.md §5): its messages, its state and
its structured summary. `loop.conversation` decides what it says next; the hosted page
(`/c/<token>/`) and email replies feed it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import models
from django.utils import timezone

from .cases import FollowUpCase

LINK_DAYS = 30
_SALT = "closeloop.loop.conversation"


def _token() -> str:
    return secrets.token_urlsafe(24)


def _expiry() -> Any:
    return timezone.now() + timedelta(days=LINK_DAYS)


def empty_summary() -> dict[str, Any]:
    return {
        "themes": [],
        "root_cause": "",
        "desired_fix": "",
        "impact": "",
        "detractor_type": "unknown",
        "churn_intent": False,
        "competitor": None,
        "wants_call": False,
        "urgency": "normal",
        "quotes": [],
    }


class Conversation(models.Model):
    """One case's conversation with its customer, on the hosted page or by email."""

    class Status(models.TextChoices):
        NOT_STARTED = "not_started", "Not started"
        ACTIVE = "active"
        COMPLETED = "completed"
        STOPPED = "stopped", "Stopped by the customer"
        TAKEN_OVER = "taken_over", "Taken over by the owner"

    OPEN = (Status.NOT_STARTED, Status.ACTIVE)

    case = models.OneToOneField(FollowUpCase, on_delete=models.CASCADE, related_name="conversation")
    token = models.CharField(max_length=40, unique=True, default=_token)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NOT_STARTED)
    locale = models.CharField(max_length=16, default="en")
    asked = models.JSONField(default=list, blank=True, help_text="the steps asked so far")
    summary = models.JSONField(default=empty_summary, blank=True)
    comment_themes = models.JSONField(
        null=True, blank=True, help_text="[[slug, confidence]] of the comment, read once"
    )
    alerted = models.JSONField(
        default=list, blank=True, help_text="urgent signals the owner was already told of"
    )
    expires_at = models.DateTimeField(default=_expiry)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    taken_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="conversation_status")]

    def __str__(self) -> str:
        return f"conversation of case {self.case_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        """Whether the engine still asks (not ended, not taken over)."""
        return self.status in self.OPEN

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def signed_token(self) -> str:
        return signing.Signer(salt=_SALT).sign(self.token)

    @property
    def url(self) -> str:
        return f"{settings.SITE_URL}/c/{self.signed_token}/"

    @classmethod
    def by_signed_token(cls, value: str) -> Conversation | None:
        """The conversation a link names; None for a damaged, forged or unknown one."""
        try:
            token = signing.Signer(salt=_SALT).unsign(value)
        except signing.BadSignature:
            return None
        return cls.objects.select_related("case").filter(token=token).first()

    def questions_answered(self) -> int:
        return self.messages.filter(sender=Message.Sender.CUSTOMER).count()

    def save_changes(self, *fields: str) -> None:
        self.updated_at = timezone.now()
        self.save(update_fields=[*fields, "updated_at"])


class Message(models.Model):
    """One message of a conversation: closeloop's question, the customer's answer, or
    the owner's own words once they take over."""

    class Sender(models.TextChoices):
        CLOSELOOP = "closeloop"
        CUSTOMER = "customer"
        OWNER = "owner"

    class Via(models.TextChoices):
        PAGE = "page"
        EMAIL = "email"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    sender = models.CharField(max_length=10, choices=Sender.choices)
    text = models.TextField()
    step = models.CharField(
        max_length=20, blank=True, help_text="what closeloop asked, or what the answer answers"
    )
    via = models.CharField(max_length=6, choices=Via.choices, default=Via.PAGE)
    reading = models.JSONField(
        default=dict, blank=True, help_text="a customer answer's themes and sentiment"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="conv_message_created"),
        ]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:40]}"

    def as_json(self) -> dict[str, Any]:
        """As the API and the page's interface show it; closeloop's messages say which
        step they are (open, probe, impact, alternatives, fix, confirm, call, close)."""
        found = {"from": self.sender, "text": self.text, "at": self.created_at.isoformat()}
        if self.sender == self.Sender.CLOSELOOP:
            found["step"] = self.step
        return found
