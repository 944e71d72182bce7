"""Customers (accounts and their people), surveys, requests and the answers they give."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from closeloop.core import nps
from closeloop.core.db import delete_some
from closeloop.core.reading import ReadByWorker


class Account(models.Model):
    """A customer company. ARR is kept in cents to avoid rounding money."""

    name = models.CharField(max_length=200)
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    tier = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="e.g. enterprise, mid-market, smb"
    )
    arr_cents = models.BigIntegerField(default=0, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default="USD")
    plan = models.CharField(max_length=100, blank=True)
    company_size = models.CharField(max_length=40, blank=True, help_text="e.g. 51-200")
    industry = models.CharField(max_length=100, blank=True)
    customer_since = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_accounts",
    )
    executive_sponsor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sponsored_accounts",
        help_text="told of detractors at the highest-value accounts (see the triage policy)",
    )
    properties = models.JSONField(default=dict, blank=True)
    churned_at = models.DateTimeField(null=True, blank=True)
    churn_reason = models.CharField(max_length=500, blank=True, help_text="why they left")
    is_demo = models.BooleanField(default=False, help_text="Created by seed_demo.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["name"], name="account_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def arr(self) -> float:
        """ARR in the account's currency units."""
        return self.arr_cents / 100

    def snapshot(self) -> dict[str, Any]:
        """The account facts worth keeping on an answer, as they were when it was given."""
        return {
            "account.name": self.name,
            "account.tier": self.tier,
            "account.plan": self.plan,
            "account.company_size": self.company_size,
            "account.industry": self.industry,
            "account.arr_cents": self.arr_cents,
            **{f"account.{k}": v for k, v in self.properties.items()},
        }


class AccountChange(models.Model):
    """A change in what an account pays or whether it stays: churned, reactivated, or its
    ARR going down (contraction) or up (expansion), from the API, a CSV import or a
    billing system. The account holds the current state; this is its history."""

    class Kind(models.TextChoices):
        CHURNED = "churned"
        REACTIVATED = "reactivated"
        CONTRACTION = "contraction"
        EXPANSION = "expansion"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    at = models.DateTimeField(help_text="when it happened")
    arr_before_cents = models.BigIntegerField(null=True, blank=True)
    arr_after_cents = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=20, help_text="api, csv, stripe, …")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["account", "at"], name="account_change_at")]

    def __str__(self) -> str:
        return f"{self.kind} of account {self.account_id} at {self.at:%Y-%m-%d}"


class Person(models.Model):
    """Someone who answers surveys. Identified by email, or by external id."""

    email = models.EmailField(max_length=254, null=True, blank=True, unique=True)
    phone = models.CharField(max_length=32, blank=True)
    name = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    locale = models.CharField(max_length=16, default="en")
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="people"
    )
    properties = models.JSONField(default=dict, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    # When another system last surveyed them (Delighted's `last_sent_at`): the survey
    # throttle counts it like a survey closeloop sent.
    last_sent_elsewhere_at = models.DateTimeField(null=True, blank=True)
    is_demo = models.BooleanField(default=False, help_text="Created by seed_demo.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(email__isnull=False) | Q(external_id__isnull=False),
                name="person_has_identity",
            )
        ]

    def __str__(self) -> str:
        return self.email or self.external_id or f"person {self.pk}"

    @classmethod
    def mark_bounced(cls, address: str, at: datetime) -> int:
        """The address was refused for good: its people are not emailed again (until an
        admin clears `bounced_at`). Returns how many were marked."""
        return cls.objects.filter(email__iexact=address, bounced_at=None).update(bounced_at=at)

    def snapshot(self) -> dict[str, Any]:
        """Person and account properties as they are now, to freeze onto an answer."""
        snap: dict[str, Any] = dict(self.properties)
        if self.account is not None:
            snap.update(self.account.snapshot())
        return snap


class Survey(models.Model):
    """An NPS question asked of people, with its own throttle, reminder and email wording."""

    DEFAULT_QUESTION = "How likely are you to recommend {product} to a friend or colleague?"
    DEFAULT_SLUG = "nps"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    question = models.CharField(max_length=500, default=DEFAULT_QUESTION)
    product_name = models.CharField(
        max_length=100, blank=True, help_text="{product} in the question; empty = PRODUCT_NAME"
    )
    subject = models.CharField(
        max_length=200, blank=True, help_text="Email subject; empty = the question"
    )
    intro = models.TextField(
        blank=True, max_length=2000, help_text="A line above the question in the email"
    )
    thank_you = models.CharField(max_length=500, blank=True)
    throttle_days = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(7), MaxValueValidator(365)],
        help_text="At most one survey per person in this many days.",
    )
    reminder_days = models.PositiveSmallIntegerField(
        default=3,
        validators=[MaxValueValidator(30)],
        help_text="One reminder this many days after sending if unanswered; 0 = none.",
    )
    link_days = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Links in the email work for this many days.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name

    @property
    def product(self) -> str:
        return self.product_name or settings.PRODUCT_NAME

    def question_text(self, product: str | None = None) -> str:
        """The question as people read it, with {product} filled in."""
        return self.question.replace("{product}", product or self.product)

    @classmethod
    def default(cls) -> Survey:
        """The survey answers go to when the caller names none."""
        survey, _ = cls.objects.get_or_create(
            slug=cls.DEFAULT_SLUG, defaults={"name": "NPS", "question": cls.DEFAULT_QUESTION}
        )
        return survey


def _new_token() -> str:
    return secrets.token_urlsafe(24)


class Wave(models.Model):
    """People added to a survey together, sent at once or spread over days."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="waves")
    name = models.CharField(max_length=200)
    starts_at = models.DateTimeField(default=timezone.now)
    spread_days = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(60)], help_text="0 = everyone at once"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class SurveyRequest(models.Model):
    """One invitation of one person to one survey, from scheduling to answer.

    A request is `scheduled` until the worker sends it (`sent`), or finds it may
    not: the person unsubscribed, bounced or was surveyed too recently
    (`skipped`, with the reason). Nothing blocked is ever queued for later.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        SENT = "sent"
        ANSWERED = "answered"
        SKIPPED = "skipped"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Purpose(models.TextChoices):
        SURVEY = "survey"
        FOLLOW_UP = "follow_up", "Follow-up survey after a case"
        CHECK_BACK = "check_back", "Check-back after a resolved case"
        EXIT = "exit", "Exit interview after a churn"

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="survey_requests")
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="requests")
    wave = models.ForeignKey(
        Wave, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.SURVEY)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    scheduled_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    token = models.CharField(max_length=64, unique=True, default=_new_token)
    status_reason = models.CharField(max_length=200, blank=True)
    options = models.JSONField(
        default=dict, blank=True, help_text="Per-request wording: subject, intro, product"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["status", "scheduled_at"]),
            models.Index(fields=["person", "sent_at"], name="request_person_sent"),
            models.Index(
                fields=["survey", "sent_at"],
                condition=Q(status="sent", reminded_at__isnull=True),
                name="request_remind_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.survey} for {self.person} ({self.status})"


class Response(ReadByWorker):
    """One answer to the NPS question. The heart of every figure closeloop shows."""

    class Source(models.TextChoices):
        API = "api"
        LINK = "link"
        EMAIL = "email"
        IMPORT = "import"

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="responses")
    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="responses")
    # The account the person belonged to when answering, so history stays put if they move.
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses"
    )
    request = models.ForeignKey(
        SurveyRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses"
    )
    score = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    comment = models.TextField(blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    properties = models.JSONField(
        default=dict, blank=True, help_text="Person and account properties when answered."
    )
    tags = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)
    is_demo = models.BooleanField(default=False, help_text="Created by seed_demo.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Stored by the batch API and not yet triaged: the worker's intake lane triages it
    # next, in order (loop.intake.handle_pending_triage).
    triage_pending = models.BooleanField(default=False, db_default=False)
    # Its themes are ThemeTag rows; the reading's state and sentiment: ReadByWorker.

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=10), name="response_score_0_10"
            )
        ]
        indexes = [
            models.Index(fields=["created_at", "score"], name="response_created_score"),
            models.Index(fields=["survey", "created_at"], name="response_survey_created"),
            models.Index(fields=["account", "created_at"], name="response_account_created"),
            models.Index(fields=["person", "created_at"], name="response_person_created"),
            # Only answers still waiting for their themes are indexed: the worker's queue.
            models.Index(
                fields=["themes_next_at", "id"],
                condition=Q(themes_status="pending"),
                name="response_themes_pending",
            ),
            # Whether the demo is loaded, asked on every page: only demo answers indexed.
            models.Index(fields=["id"], condition=Q(is_demo=True), name="response_demo"),
            # Only answers waiting for triage are indexed: the intake lane's queue.
            models.Index(
                fields=["id"], condition=Q(triage_pending=True), name="response_triage_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.person} scored {self.score}"

    @staticmethod
    def demo_loaded() -> bool:
        """True once `manage.py seed_demo` has loaded the demo answers."""
        return Response.objects.filter(is_demo=True).exists()

    @property
    def category(self) -> nps.Category:
        return nps.category(self.score)

    def themes_json(self) -> list[dict[str, Any]]:
        """Its themes as the API and webhooks show them: people's first, then the model's
        by confidence. Prefetch `theme_tags__theme` when listing many."""
        tags = sorted(
            self.theme_tags.all(), key=lambda t: (t.source != "person", -(t.confidence or 0))
        )
        return [
            {
                "slug": t.theme.slug,
                "name": t.theme.name,
                "confidence": t.confidence,
                "source": t.source,
                "model_version": t.model_version,
            }
            for t in tags
        ]

    @property
    def band(self) -> nps.Band | None:
        return nps.band(self.score)


class ResponseEdit(models.Model):
    """A change to an answer after it was given: a second click, an edit, an API update."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="edits")
    score_before = models.PositiveSmallIntegerField()
    score_after = models.PositiveSmallIntegerField()
    comment_before = models.TextField(blank=True)
    comment_after = models.TextField(blank=True)
    via = models.CharField(max_length=20, help_text="email, link, api, delighted_api")
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.score_before} → {self.score_after} via {self.via}"


class Suppression(models.Model):
    """An address that must never be surveyed again, kept only as a hash: what is left
    of a person who asked to be erased (closeloop/loop/erasure.py)."""

    address_hash = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.address_hash[:12]}… ({self.reason})"

    @staticmethod
    def digest(address: str) -> str:
        return hashlib.sha256(address.strip().lower().encode()).hexdigest()

    @classmethod
    def add(cls, address: str, reason: str) -> None:
        cls.objects.get_or_create(address_hash=cls.digest(address), defaults={"reason": reason})

    @classmethod
    def suppressed(cls, addresses: list[str]) -> set[str]:
        """Which of these addresses (as given) are on the list."""
        by_hash = {cls.digest(a): a for a in addresses if a}
        hashes, found = list(by_hash), set()
        for start in range(0, len(hashes), 500):  # under SQLite's limit on parameters
            chunk = hashes[start : start + 500]
            found |= set(
                cls.objects.filter(address_hash__in=chunk).values_list("address_hash", flat=True)
            )
        return {by_hash[h] for h in found}


class LinkHit(models.Model):
    """A public link used, kept an hour: a score link opened in an email (to tell a
    person's click from a mail scanner opening every link), or an anonymous answer to a
    link survey (to limit answers per client address)."""

    class Kind(models.TextChoices):
        CLICK = "click", "Score link opened"
        ANSWER = "answer", "Anonymous link-survey answer"

    KEPT = timedelta(hours=1)

    kind = models.CharField(max_length=6, choices=Kind.choices)
    request = models.ForeignKey(SurveyRequest, null=True, blank=True, on_delete=models.CASCADE)
    survey = models.ForeignKey(Survey, null=True, blank=True, on_delete=models.CASCADE)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    client = models.CharField(max_length=64, blank=True, help_text="a hash of the address")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["request", "at"], name="linkhit_request_at"),
            models.Index(fields=["survey", "client", "at"], name="linkhit_survey_client_at"),
            models.Index(fields=["at"], name="linkhit_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%H:%M:%S}"

    @classmethod
    def scores_clicked_around(cls, request: SurveyRequest, since: datetime) -> int:
        """How many different scores of this email were opened since `since`: a person
        opens one, a scanner opens them all within seconds."""
        return (
            cls.objects.filter(kind=cls.Kind.CLICK, request=request, at__gte=since)
            .values("score")
            .distinct()
            .count()
        )

    @classmethod
    def answers_from(cls, survey: Survey, client: str, since: datetime) -> int:
        """Anonymous answers to this link survey from this client address since `since`."""
        return cls.objects.filter(
            kind=cls.Kind.ANSWER, survey=survey, client=client, at__gte=since
        ).count()

    @classmethod
    def expire(cls, limit: int = 5000) -> int:
        """Forget hits older than KEPT, a bounded number at a time; returns how many."""
        return delete_some(cls.objects.filter(at__lt=timezone.now() - cls.KEPT), limit)


def handle_link_hit_expiry() -> bool:
    """Worker step: forget link hits older than an hour."""
    return LinkHit.expire() > 0


class Upload(models.Model):
    """A file a person uploaded, kept in the database so any web process and any worker
    can read it (no shared disk needed); forgotten a day after it was uploaded."""

    KEPT = timedelta(days=1)

    name = models.CharField(max_length=255, blank=True)
    data = models.BinaryField()
    size = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.size} bytes)"

    @classmethod
    def keep(cls, uploaded: Any, user: Any = None) -> Upload:
        """Store an uploaded file (read in chunks, never whole into a form field)."""
        data = b"".join(uploaded.chunks())
        return cls.objects.create(
            name=str(uploaded.name or "")[:255], data=data, size=len(data), created_by=user
        )


class CsvImport(models.Model):
    """A CSV file being imported by the worker, with its progress and, at the end, its
    report: a large file is never written inside a web request."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    LEASE = timedelta(minutes=10)

    upload = models.ForeignKey(Upload, null=True, blank=True, on_delete=models.SET_NULL)
    name = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=16)
    valid_only = models.BooleanField(default=False)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=100, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"import of {self.name} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        return int(100 * self.rows_done / self.rows_total) if self.rows_total else 0
