"""Events that explain a trend: incidents, outages, releases and price changes.

Each is drawn on the NPS trend, and `detractor_spike` tests whether the share of
detractors after it rose beyond what noise explains (docs/domain.md §6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Func, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from closeloop.core.nps import Z_95
from closeloop.surveys.models import Response

# Answers this long before and after an event are compared.
SPIKE_WINDOW = timedelta(days=14)
# Fewer answers than this after an event cannot show a spike.
SPIKE_MIN_ANSWERS = 10


class Incident(models.Model):
    """Something that happened to customers, on the timeline of their answers."""

    class Kind(models.TextChoices):
        INCIDENT = "incident"
        OUTAGE = "outage"
        RELEASE = "release"
        PRICE_CHANGE = "price_change", "Price change"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["started_at"], name="incident_started")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="incident_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"


def _window_count(before: bool, detractors: bool) -> Coalesce:
    """Answers in the window just before or just after each incident's start (correlated)."""
    start = OuterRef("started_at")
    bounds = (
        {"created_at__gte": start - SPIKE_WINDOW, "created_at__lt": start}
        if before
        else {"created_at__gte": start, "created_at__lt": start + SPIKE_WINDOW}
    )
    answers = Response.objects.filter(**bounds)
    if detractors:
        answers = answers.filter(score__lte=6)
    # COUNT as a plain function, not an aggregate: no GROUP BY, so always exactly one row.
    count = answers.order_by().annotate(n=Func(F("id"), function="COUNT")).values("n")
    return Coalesce(Subquery(count, output_field=models.IntegerField()), 0)


@dataclass(frozen=True)
class Spike:
    """Detractor share in the windows before and after an event, and whether it rose for real."""

    before_answers: int
    before_detractors: int
    after_answers: int
    after_detractors: int

    @property
    def before_share(self) -> float | None:
        return 100.0 * self.before_detractors / self.before_answers if self.before_answers else None

    @property
    def after_share(self) -> float | None:
        return 100.0 * self.after_detractors / self.after_answers if self.after_answers else None

    @property
    def z(self) -> float | None:
        """Two-proportion z statistic of the rise in detractor share (pooled)."""
        n1, n2 = self.before_answers, self.after_answers
        if not n1 or not n2:
            return None
        pooled = (self.before_detractors + self.after_detractors) / (n1 + n2)
        spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        if spread == 0:
            return None
        return (self.after_detractors / n2 - self.before_detractors / n1) / spread

    @property
    def is_spike(self) -> bool:
        """More detractors after than before, beyond noise at 95% (one-sided rise, |z| > 1.96)."""
        z = self.z
        return self.after_answers >= SPIKE_MIN_ANSWERS and z is not None and z > Z_95


def with_spikes(qs: models.QuerySet[Incident]) -> list[tuple[Incident, Spike]]:
    """Each incident with its before/after detractor counts, in one query."""
    annotated = qs.annotate(
        before_n=_window_count(before=True, detractors=False),
        before_d=_window_count(before=True, detractors=True),
        after_n=_window_count(before=False, detractors=False),
        after_d=_window_count(before=False, detractors=True),
    )
    return [(i, Spike(i.before_n, i.before_d, i.after_n, i.after_d)) for i in annotated]


class MonthlyReportRun(models.Model):
    """The monthly report for `month` was sent (one row per month: the worker's claim)."""

    month = models.DateField(unique=True, help_text="the first day of the month reported")
    recipients = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"report for {self.month:%Y-%m} to {self.recipients}"


class HealthBacktest(models.Model):
    """One run of the health backtest, with the model it fitted (insights/backtest.py).

    The worker runs one a month, and one whenever someone asks on the backtest page.
    The latest finished run gives account health its weights: the fitted ones when
    that run put them in use, else the written ones (health.WEIGHTS).
    """

    requested_at = models.DateTimeField(default=timezone.now)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="months and pooled AUCs")
    weights = models.JSONField(default=dict, blank=True, help_text="the fitted points per signal")
    in_use = models.BooleanField(default=False, help_text="the fitted weights score accounts")
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["finished_at"], name="backtest_finished")]

    def __str__(self) -> str:
        return f"health backtest of {self.requested_at:%Y-%m-%d %H:%M}"


class HealthWatchRun(models.Model):
    """The day's look for falling account health (insights/watch.py): one row per day,
    the worker's claim."""

    day = models.DateField(unique=True)
    accounts = models.PositiveIntegerField(default=0, help_text="live accounts scored")
    fell = models.PositiveIntegerField(default=0, help_text="accounts whose health fell")
    opened = models.PositiveIntegerField(default=0, help_text="health cases opened")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"health watch {self.day}: {self.opened} opened"
