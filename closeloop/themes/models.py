"""The theme engine's records: themes, the tags on answers, the examples the classifier
learns from, retrainings, discoveries and their candidates.

The tables keep their first names (`insights_*`): they were created when the engine was
part of insights, and moving them would move data for nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from closeloop.core.errors import FieldError
from closeloop.surveys.models import Response

# The theme filter's name for answers the worker read and gave no theme.
UNCLASSIFIED = "unclassified"


class Theme(models.Model):
    """A reason customers give (docs/domain.md §6). Default slugs never change.

    Retired themes keep their tags readable; a merged theme points at the one it
    became, and its tags are moved there (`merged_into`).
    """

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    probes = models.JSONField(default=list, blank=True, help_text="the conversation guide's")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The protocol sheet (docs/closed-loop.md §12): who owns the theme's cases, answers
    # approved in advance, the next steps, and the department to loop in.
    team = models.ForeignKey(
        "team.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="themes"
    )
    approved_answers = models.JSONField(
        default=list, blank=True, help_text="pre-approved answers: [{title, body}]"
    )
    next_steps = models.JSONField(default=list, blank=True)
    loop_in = models.CharField(
        max_length=200, blank=True, help_text="the department to loop in, and how to reach it"
    )
    retired_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from"
    )
    split_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="split_into"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "insights_theme"
        ordering = ["name"]
        constraints = [
            # Two themes never read the same in a report (taxonomy checks it first).
            models.UniqueConstraint(Lower("name"), name="theme_name_unique_ignoring_case")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_sheet(self) -> bool:
        return bool(self.team_id or self.approved_answers or self.next_steps or self.loop_in)

    @property
    def is_active(self) -> bool:
        return self.retired_at is None and self.merged_into_id is None

    @staticmethod
    def named(slug: str, field: str = "theme") -> Theme | None:
        """The theme with this slug as it is now (a merged one's successor); None for an
        empty slug, a FieldError naming `field` for an unknown one."""
        if not slug.strip():
            return None
        theme = Theme.objects.filter(slug=slug.strip()).select_related("merged_into").first()
        if theme is None:
            raise FieldError(field, f"no theme {slug!r}")
        return theme.current

    @property
    def current(self) -> Theme:
        """The theme this one is now: itself, or the one it was merged into (a merge
        target is always a theme in use, so the chain ends)."""
        theme = self
        while theme.merged_into is not None:
            theme = theme.merged_into
        return theme

    @property
    def state(self) -> str:
        if self.merged_into_id:
            return "merged"
        return "retired" if self.retired_at else "active"


class ThemeTag(models.Model):
    """A theme found in an answer's comment, by the classifier or by a person."""

    class Source(models.TextChoices):
        MODEL = "model"
        PERSON = "person"

    theme = models.ForeignKey(Theme, on_delete=models.PROTECT, related_name="tags")
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="theme_tags")
    confidence = models.FloatField(null=True, blank=True, help_text="the model's; none by hand")
    source = models.CharField(max_length=8, choices=Source.choices)
    model_version = models.CharField(max_length=80, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "insights_themetag"
        constraints = [models.UniqueConstraint(fields=["response", "theme"], name="theme_tag_once")]
        indexes = [models.Index(fields=["theme", "response"], name="theme_tag_theme")]

    def __str__(self) -> str:
        return f"{self.theme.slug} on {self.response_id}"


class ThemeExample(models.Model):
    """A comment labeled by a person; the next retraining learns from it.

    A correction on an answer (or on its case) keeps one example per answer, holding
    the answer's themes after the correction: the themes a person added, and not those
    they removed. An example with no theme teaches "none of these".
    """

    class Source(models.TextChoices):
        CORRECTION = "correction"
        DISCOVERY = "discovery"

    text = models.TextField()
    themes = models.JSONField(default=list, blank=True, help_text="theme slugs")
    source = models.CharField(max_length=12, choices=Source.choices)
    response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    via = models.CharField(max_length=120, blank=True, help_text="page, or the API key's name")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "insights_themeexample"
        constraints = [
            models.UniqueConstraint(
                fields=["response"],
                condition=Q(response__isnull=False),
                name="theme_example_per_response",
            )
        ]

    def __str__(self) -> str:
        return f"{self.text[:40]!r} → {', '.join(self.themes) or 'no theme'}"


class ThemeTraining(models.Model):
    """One retraining of the theme classifier, asked for by a person or run nightly.

    A finished run that learned something new holds the trained model (`model`); the
    newest such run is the model every worker uses, and its version goes on every tag
    it gives. A run whose examples are those of the model in use ends "unchanged".
    """

    class Kind(models.TextChoices):
        ON_DEMAND = "on_demand", "On demand"
        NIGHTLY = "nightly"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        UNCHANGED = "unchanged"
        FAILED = "failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    day = models.DateField(null=True, blank=True, help_text="the night's date, for nightly runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    version = models.CharField(max_length=80, blank=True)
    examples = models.PositiveIntegerField(default=0, help_text="how many it learned from")
    corrections = models.PositiveIntegerField(default=0, help_text="of which people's")
    error = models.CharField(max_length=300, blank=True)
    model = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "insights_themetraining"
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["day"], condition=Q(kind="nightly"), name="theme_training_nightly_once"
            )
        ]
        indexes = [models.Index(fields=["status", "finished_at"], name="theme_training_status")]

    def __str__(self) -> str:
        return f"{self.kind} training {self.status} {self.version}"


class ThemeDiscovery(models.Model):
    """A search for new themes among a period's unclassified comments, run by the worker."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    since = models.DateField()
    until = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    comments = models.PositiveIntegerField(default=0, help_text="unclassified comments read")
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "insights_themediscovery"
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"discovery {self.since}..{self.until} {self.status}"


class ThemeCandidate(models.Model):
    """A group of similar unclassified comments that may be a theme nobody named yet."""

    class Status(models.TextChoices):
        OPEN = "open"
        ACCEPTED = "accepted"
        DISMISSED = "dismissed"

    discovery = models.ForeignKey(
        ThemeDiscovery, on_delete=models.CASCADE, related_name="candidates"
    )
    name = models.CharField(max_length=100, help_text="suggested from its words")
    keywords = models.JSONField(default=list)
    size = models.PositiveIntegerField()
    share = models.FloatField(help_text="of the unclassified comments read")
    examples = models.JSONField(default=list, help_text="the most typical comments' texts")
    response_ids = models.JSONField(default=list, help_text="every member answer, typical first")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    theme = models.ForeignKey(
        Theme, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "insights_themecandidate"
        ordering = ["-size", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.size})"
