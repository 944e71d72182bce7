"""A FollowUpCase is what a detractor's answer becomes: an owner, a deadline and a
record of everything done about it. Its methods are the only way its state changes,
and each leaves an Activity row, so the timeline is complete; who hears of a change
(the owner, webhooks, Slack) is `loop.actions`' part. Also here: the timeline, tasks,
in-app notifications and inbound mail.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from closeloop.core import nps
from closeloop.core.errors import FieldError
from closeloop.core.reading import ReadByWorker
from closeloop.surveys.models import Account, Person, Response, SurveyRequest
from closeloop.team.models import Team, User

from .. import batch
from ..policy import Action
from .settings import TriagePolicy


def _reply_token() -> str:
    return secrets.token_urlsafe(18)


class FollowUpCase(models.Model):
    """The follow-up of one customer's answer (and any newer answers while it is open)."""

    class Loop(models.TextChoices):
        DETRACTOR = "detractor"
        PASSIVE = "passive"
        PROMOTER = "promoter"
        HEALTH = "health"  # the account's health score fell (no answer opened it)

    class Status(models.TextChoices):
        OPEN = "open"
        CONTACTED = "contacted"
        IN_CONVERSATION = "in_conversation", "In conversation"
        CLOSED = "closed"

    class Resolution(models.TextChoices):
        RESOLVED = "resolved"
        CANT_FIX = "cant_fix", "Acknowledged – can't fix"
        NO_RESPONSE = "no_response", "No response"
        SUPERSEDED = "superseded", "Superseded by a detractor case"

    class DetractorType(models.TextChoices):
        LEAVING = "leaving"
        EVALUATING = "evaluating", "Evaluating alternatives"
        INVESTED = "invested", "Disappointed but invested"
        LOYAL = "loyal", "Loyal, one bad experience"

    class Urgency(models.TextChoices):
        LOW = "low"
        NORMAL = "normal"
        HIGH = "high"

    loop = models.CharField(max_length=10, choices=Loop.choices, default=Loop.DETRACTOR)
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="cases")
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases"
    )
    response = models.ForeignKey(
        Response,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="cases",
        help_text="the latest answer (none for a health case)",
    )
    responses = models.ManyToManyField(Response, related_name="joined_cases", blank=True)
    score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="the latest answer's score (none for a health case)"
    )
    health = models.JSONField(
        null=True,
        blank=True,
        help_text="a health case's fall: score, was, days and reasons [[points, why], …]",
    )
    # The person's first answer after the one that opened the case (a later survey, a
    # check-back): kept by `loop.next_answers` as answers arrive or change, so the
    # program metrics read it instead of looking it up per case.
    next_score = models.PositiveSmallIntegerField(null=True, blank=True)
    next_answered_at = models.DateTimeField(null=True, blank=True)
    previous_score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="the person's answer before the one that opened the case"
    )
    band = models.CharField(max_length=10, blank=True)
    high_value = models.BooleanField(default=False)
    action = models.CharField(max_length=32, choices=[(a.value, a.label) for a in Action])
    policy = models.ForeignKey(TriagePolicy, on_delete=models.PROTECT, related_name="cases")
    rule = models.CharField(max_length=60, help_text="the matrix cell that chose the action")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cases",
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    watchers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="watched_cases",
        blank=True,
        help_text="also told of replies (e.g. the account's executive sponsor)",
    )
    routed_by = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True)
    close_reason = models.CharField(max_length=200, blank=True)
    close_note = models.TextField(blank=True)
    detractor_type = models.CharField(max_length=12, choices=DetractorType.choices, blank=True)
    detractor_type_by = models.CharField(
        max_length=12,
        blank=True,
        help_text="who set the type: a person, the conversation, or signals in the comment",
    )
    priority = models.FloatField(default=0, db_index=True)
    urgency = models.CharField(
        max_length=8,
        choices=Urgency.choices,
        default=Urgency.NORMAL,
        db_default=Urgency.NORMAL,
        help_text="high when the customer's words cannot wait (the follow-up conversation)",
    )
    due_at = models.DateTimeField(null=True, blank=True)
    first_touch_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    next_escalation_at = models.DateTimeField(
        null=True, blank=True, help_text="when the worker escalates if still untouched"
    )
    reply_token = models.CharField(max_length=40, unique=True, default=_reply_token)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    priority_refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["next_escalation_at"], name="case_next_escalation"),
            models.Index(fields=["status", "-priority"], name="case_status_priority"),
            models.Index(fields=["owner", "status"], name="case_owner_status"),
            models.Index(fields=["person", "status"], name="case_person_status"),
            # The program metrics read the cases of one loop opened in a period.
            models.Index(fields=["loop", "created_at"], name="case_loop_created"),
        ]

    def __str__(self) -> str:
        return (
            f"case {self.pk}: {self.person} ({self.score if self.score is not None else self.loop})"
        )

    # --- what the case is -------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self.status == self.Status.CLOSED

    @property
    def is_overdue(self) -> bool:
        """Past its deadline with no first touch yet."""
        return (
            not self.is_closed
            and self.first_touch_at is None
            and self.due_at is not None
            and self.due_at <= timezone.now()
        )

    @property
    def score_category(self) -> str:
        """promoter, passive or detractor: the latest score's class (for colour); a
        health case's loop."""
        return nps.category(self.score).value if self.score is not None else self.loop

    @property
    def score_shown(self) -> str:
        """The score on the case's badge: the answer's, or a health case's health."""
        if self.score is not None:
            return str(self.score)
        return str((self.health or {}).get("score", "—"))

    @property
    def score_label(self) -> str:
        """ "3/10", or "health 35 (was 78)" for a health case."""
        if self.score is not None:
            was = f" (was {self.previous_score})" if self.previous_score is not None else ""
            return f"{self.score}/10{was}"
        found = self.health or {}
        return f"health {found.get('score')} (was {found.get('was')})"

    @property
    def comment_text(self) -> str:
        """What opened the case, as its owner reads it: the answer's comment, or why the
        account's health fell."""
        if self.response is not None:
            return self.response.comment.strip()
        found = self.health or {}
        reasons = "; ".join(f"{points} {why}" for points, why in found.get("reasons", []))
        return f"Health {found.get('was')} → {found.get('score')} in {found.get('days')} days" + (
            f": {reasons}" if reasons else ""
        )

    @property
    def action_enum(self) -> Action:
        return Action(self.action)

    @property
    def arr_cents(self) -> int:
        return self.account.arr_cents if self.account is not None else 0

    @property
    def playbook(self) -> list[str]:
        if self.score is None:
            return list(self.policy.rules.health_cases.playbook)
        return self.policy.rules.playbook(self.score, self.detractor_type)

    @property
    def reply_address(self) -> str:
        """The per-case Reply-To address; mail to it lands on this case."""
        local, _, domain = settings.REPLY_ADDRESS.partition("@")
        return f"{local}+{self.reply_token}@{domain}"

    # --- changes, each logged ----------------------------------------------------------

    def log(self, kind: str, text: str = "", actor: User | None = None, **data: Any) -> Activity:
        """Append an event to the timeline. A reply or call note with words is left for
        the worker to read (themes and sentiment), after commit."""
        readable = kind in Activity.READ and not data.get("automatic") and text.strip()
        return batch.add(
            Activity(
                case=self,
                kind=kind,
                text=text,
                actor=actor,
                data=data,
                themes_status="pending" if readable else "",
            )
        )

    def save_changes(self, *fields: str) -> None:
        """Save the named fields and stamp `updated_at`."""
        self.updated_at = timezone.now()
        self.save(update_fields=[*fields, "updated_at"])

    def touch(
        self, at: datetime | None = None, status: str | None = None, actor: User | None = None
    ) -> None:
        """Record contact with the customer, moving to `status` (an open state) in the same write.

        The first contact meets the SLA and stops escalation.
        """
        fields = []
        if self.first_touch_at is None:
            self.first_touch_at = at or timezone.now()
            self.next_escalation_at = None
            fields += ["first_touch_at", "next_escalation_at"]
        old = self.status
        if status is not None and status != old:
            self.status = status
            fields.append("status")
        if fields:
            self.save_changes(*fields)
        if self.status != old:
            self._log_status(old, actor)

    @classmethod
    def contacted(cls, cases: list[FollowUpCase], at: datetime) -> None:
        """Our first emails reached these customers: SLA met, and open → contacted.

        Two UPDATEs for any number of cases, so a worker's batch costs the same
        as one email; each status change is still logged on its case.
        """
        now = timezone.now()
        untouched = [c for c in cases if c.first_touch_at is None]
        opened = [c for c in cases if c.status == cls.Status.OPEN]
        if untouched:
            cls.objects.filter(
                pk__in=[c.pk for c in untouched], first_touch_at__isnull=True
            ).update(first_touch_at=at, next_escalation_at=None, updated_at=now)
        if opened:
            cls.objects.filter(pk__in=[c.pk for c in opened], status=cls.Status.OPEN).update(
                status=cls.Status.CONTACTED, updated_at=now
            )
        for case in untouched:
            case.first_touch_at, case.next_escalation_at = at, None
        for case in opened:
            case.status = cls.Status.CONTACTED
            case._log_status(cls.Status.OPEN, None)

    def set_status(self, status: str, actor: User | None = None) -> None:
        """Move to an open state; closing goes through `close`."""
        if status == self.status:
            return
        old = self.status
        self.status = status
        self.save_changes("status")
        self._log_status(old, actor)

    def _log_status(self, old: str, actor: User | None) -> None:
        new = self.status
        self.log(Activity.Kind.STATUS_CHANGE, f"{old} → {new}", actor, old=old, new=new)

    def assign(self, owner: User | None, actor: User | None, why: str = "") -> bool:
        """Give the case to someone (None: back to the unassigned queue); False if they
        had it already. `actions.assign` also tells them."""
        if owner == self.owner:
            return False
        old = self.owner
        self.owner = owner
        self.save_changes("owner")
        self.log(
            Activity.Kind.ASSIGNED,
            f"assigned to {owner.display_name if owner else 'nobody'}"
            + (f" (was {old.display_name})" if old else "")
            + (f": {why}" if why else ""),
            actor,
            owner=owner.pk if owner else None,
            previous=old.pk if old else None,
        )
        return True

    def log_call(self, outcome: str, note: str, actor: User | None) -> Activity:
        """A call happened (or was tried): reaching the customer starts the conversation."""
        activity = self.log(Activity.Kind.CALL_LOGGED, note, actor, outcome=outcome)
        if outcome in CALL_REACHED:
            self.touch(None, None if self.is_closed else self.Status.IN_CONVERSATION, actor)
            # Reaching the customer is what the matrix's call task asked for.
            for task in self.tasks.filter(kind=Task.Kind.CALL, done_at__isnull=True):
                task.complete(actor)
        elif outcome in CALL_ATTEMPTED and self.status == self.Status.OPEN:
            self.touch(None, self.Status.CONTACTED, actor)
        return activity

    def close(
        self,
        resolution: str,
        reason: str,
        note: str,
        actor: User | None,
        promises: dict[int, tuple[str, str]] | None = None,
    ) -> None:
        """Close with an outcome; a reason and a note are required so the record means
        something, and what became of each open promise ({task id: (outcome, note)})."""
        open_promises = list(
            self.tasks.filter(kind=Task.Kind.COMMITMENT, done_at__isnull=True).order_by("due_at")
        )
        given = promises or {}
        missing = [t for t in open_promises if t.pk not in given]
        if missing:
            raise FieldError(
                "promises",
                f"{len(missing)} promise(s) still open: say what became of each "
                "(kept, broken or dropped): " + "; ".join(f"#{t.pk} {t.title}" for t in missing),
            )
        unknown = sorted(set(given) - {t.pk for t in open_promises})
        if unknown:
            raise FieldError("promises", f"no open promise #{unknown[0]} on this case")
        for pk, (outcome, _) in given.items():
            if outcome not in Task.Outcome.values:
                raise FieldError(
                    f"promises.{pk}.outcome", f"must be one of {', '.join(Task.Outcome.values)}"
                )
        if resolution not in self.Resolution.values:
            raise FieldError("resolution", f"must be one of {', '.join(self.Resolution.values)}")
        if not reason.strip():
            raise FieldError("reason", "a closing reason is required")
        if not note.strip():
            raise FieldError("note", "a closing note is required")
        if self.is_closed:
            raise FieldError("status", "the case is already closed")
        for task in open_promises:
            outcome, promise_note = given[task.pk]
            task.settle(outcome, promise_note, actor)
        self.status = self.Status.CLOSED
        self.resolution = resolution
        self.close_reason = reason.strip()
        self.close_note = note.strip()
        self.closed_at = timezone.now()
        self.next_escalation_at = None
        self.save_changes(
            "status", "resolution", "close_reason", "close_note", "closed_at", "next_escalation_at"
        )
        self.log(
            Activity.Kind.STATUS_CHANGE,
            f"closed as {self.get_resolution_display()}: {self.close_reason}\n{self.close_note}",
            actor,
            new=self.status,
            resolution=resolution,
        )

    def reopen(self, why: str, actor: User | None) -> None:
        """Open a closed case again, e.g. when the customer writes back."""
        if not self.is_closed:
            raise FieldError("status", "the case is not closed")
        self.status = self.Status.IN_CONVERSATION if self.first_touch_at else self.Status.OPEN
        self.resolution = ""
        self.closed_at = None
        self.save_changes("status", "resolution", "closed_at")
        self.log(Activity.Kind.REOPENED, why, actor)
        # A check-back still to be sent asks about a fix that did not hold: not sent.
        SurveyRequest.objects.filter(
            check_back__case=self, status=SurveyRequest.Status.SCHEDULED
        ).update(status=SurveyRequest.Status.CANCELLED, status_reason="the case was reopened")

    def watch(self, user: User, actor: User | None) -> None:
        """Add someone (a senior leader, the executive sponsor) who hears of replies."""
        if not user.is_active:
            raise FieldError("user", "is not an active user")
        if self.watchers.filter(pk=user.pk).exists():
            return
        self.watchers.add(user)
        self.log(
            Activity.Kind.NOTE, f"{user.display_name} added to the case", actor, watcher=user.pk
        )

    # Who may change a type someone else set: a person over the conversation over the
    # signals read in the comment at triage.
    TYPE_SOURCES = ("signals", "conversation", "person")

    def set_detractor_type(self, kind: str, actor: User | None) -> bool:
        """A person says what kind of detractor this is; whether it changed."""
        if kind not in self.DetractorType.values:
            raise FieldError(
                "detractor_type", f"must be one of {', '.join(self.DetractorType.values)}"
            )
        return self.suggest_type(kind, "person", actor=actor)

    def suggest_type(self, kind: str, by: str, why: str = "", actor: User | None = None) -> bool:
        """Record the detractor type `by` (signals, conversation, person) found, unless a
        stronger source set one; a type with its own deadline (policy `type_sla_hours`)
        shortens the first touch's. Whether it was recorded."""
        sources = self.TYPE_SOURCES
        if self.detractor_type_by and sources.index(self.detractor_type_by) > sources.index(by):
            return False
        if kind == self.detractor_type and self.detractor_type_by == by:
            return False
        self.detractor_type, self.detractor_type_by = kind, by
        fields = ["detractor_type", "detractor_type_by"]
        hours = self.policy.rules.type_sla_hours.get(kind)
        sooner = self.created_at + timedelta(hours=hours) if hours else None
        if sooner and self.first_touch_at is None and self.due_at and sooner < self.due_at:
            self.due_at = sooner
            if self.escalation_level == 0:
                self.next_escalation_at = sooner
            fields += ["due_at", "next_escalation_at"]
        self.save_changes(*fields)
        source = {"person": "", "conversation": " (the follow-up conversation)"}.get(
            by, " (suggested by the comment)"
        )
        self.log(
            Activity.Kind.NOTE,
            f"detractor type: {self.get_detractor_type_display()}{source}"
            + (f": {why}" if why else "")
            + (f"; due {self.due_at:%Y-%m-%d %H:%M} UTC" if "due_at" in fields else ""),
            actor,
            detractor_type=kind,
            by=by,
        )
        return True

    def give(
        self,
        kind: str,
        value: float | None,
        currency: str,
        note: str,
        actor: User | None,
    ) -> Gesture:
        """Record a recovery gesture (docs/closed-loop.md §10) on the timeline."""
        if kind not in Gesture.Kind.values:
            raise FieldError("kind", f"must be one of {', '.join(Gesture.Kind.values)}")
        cents = None
        if value is not None:
            if not 0 <= value <= 100_000_000:
                raise FieldError("value", "must be between 0 and 100,000,000")
            cents = round(value * 100)
        code = (currency or (self.account.currency if self.account else "") or "USD").upper()
        if cents is not None and not (len(code) == 3 and code.isalpha() and code.isascii()):
            raise FieldError("currency", "must be a three-letter ISO 4217 code, e.g. EUR")
        gesture = Gesture.objects.create(
            case=self,
            kind=kind,
            value_cents=cents,
            currency=code if cents is not None else "",
            note=note.strip()[:500],
            actor=actor,
        )
        worth = f" worth {code} {cents / 100:,.2f}" if cents is not None else ""
        self.log(
            Activity.Kind.GESTURE,
            f"{gesture.get_kind_display()}{worth}" + (f": {gesture.note}" if gesture.note else ""),
            actor,
            gesture=gesture.pk,
            gesture_kind=kind,
            value_cents=cents,
            currency=gesture.currency,
        )
        return gesture

    def commit(self, promise: str, due_at: datetime, actor: User | None) -> Task:
        """Summarise-and-commit: what was promised to the customer, and by when."""
        if not promise.strip():
            raise FieldError("promise", "say what was promised")
        if due_at <= timezone.now():
            raise FieldError("due_at", "must be in the future")
        now = timezone.now()
        task = Task.objects.create(
            case=self,
            kind=Task.Kind.COMMITMENT,
            title=promise.strip()[:300],
            due_at=due_at,
            owner=actor or self.owner,
            # Reminded a day before, or halfway there for a promise due sooner.
            remind_at=due_at - min(timedelta(hours=24), (due_at - now) / 2),
            next_escalation_at=due_at,
        )
        self.log(
            Activity.Kind.COMMITTED,
            f"promised: {task.title} (by {due_at:%Y-%m-%d %H:%M} UTC)",
            actor,
            task=task.pk,
        )
        return task


CALL_REACHED = {"talked", "resolved_on_call"}
CALL_ATTEMPTED = {"no_answer", "left_voicemail", "wrong_number"}
CALL_OUTCOMES = sorted(CALL_REACHED | CALL_ATTEMPTED)


class Activity(ReadByWorker):
    """One event on a case's timeline."""

    class Kind(models.TextChoices):
        CREATED = "created"
        ASSIGNED = "assigned"
        NOTIFIED = "notified"
        EMAIL_SENT = "email_sent", "Email sent"
        DELIVERY_FAILED = "delivery_failed", "Delivery failed"
        REPLY_RECEIVED = "reply_received", "Reply received"
        CALL_LOGGED = "call_logged", "Call logged"
        NOTE = "note"
        STATUS_CHANGE = "status_change", "Status change"
        ESCALATED = "escalated"
        REOPENED = "reopened"
        ANSWER_JOINED = "answer_joined", "New answer"
        ANSWER_CHANGED = "answer_changed", "Answer changed"
        COMMITTED = "committed", "Commitment"
        TASK_DONE = "task_done", "Task done"
        FIX_SHIPPED = "fix_shipped", "Fix shipped"
        CONVERSATION = "conversation"
        URGENT = "urgent", "Urgent signal"
        GESTURE = "gesture", "Recovery gesture"

    case = models.ForeignKey(FollowUpCase, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    text = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # A customer's reply and a call note are read by the worker like an answer's comment
    # (ReadByWorker); their themes are kept here.
    themes = models.JSONField(
        default=list, blank=True, db_default=[], help_text='[{"slug", "name", "confidence"}]'
    )
    themes_version = models.CharField(max_length=80, blank=True, default="", db_default="")

    READ = ("reply_received", "call_logged")  # the kinds whose text the worker reads

    class Meta:
        indexes = [
            models.Index(fields=["case", "created_at"], name="activity_case_created"),
            models.Index(
                fields=["themes_next_at", "id"],
                condition=Q(themes_status="pending"),
                name="activity_themes_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on case {self.case_id}"

    def themes_json(self) -> list[dict[str, Any]]:
        return list(self.themes)


class Task(models.Model):
    """Something a person must do by a date: a call the matrix asked for, or a promise made.

    A promise (`commitment`) is chased: its owner is reminded before it is due
    (`remind_at`), and once overdue it escalates like a missed first touch, to the
    owner's manager and a day later to theirs (`next_escalation_at`). Closing a case
    records what became of each open promise (`outcome`)."""

    class Kind(models.TextChoices):
        CALL = "call"
        COMMITMENT = "commitment"

    class Outcome(models.TextChoices):
        KEPT = "kept"
        BROKEN = "broken", "Broken (not kept)"
        DROPPED = "dropped", "Dropped (no longer needed)"

    case = models.ForeignKey(FollowUpCase, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    title = models.CharField(max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    due_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    remind_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0, db_default=0)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True)
    outcome_note = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["remind_at"],
                condition=Q(done_at__isnull=True, reminded_at__isnull=True),
                name="task_remind_open",
            ),
            models.Index(
                fields=["next_escalation_at"],
                condition=Q(done_at__isnull=True),
                name="task_escalate_open",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        return self.done_at is None and self.due_at <= timezone.now()

    def complete(self, actor: User | None) -> None:
        if self.done_at is None:
            self.done_at = timezone.now()
            if self.kind == self.Kind.COMMITMENT and not self.outcome:
                self.outcome = self.Outcome.KEPT
            self.next_escalation_at = None
            self.save(update_fields=["done_at", "outcome", "next_escalation_at"])
            self.case.log(Activity.Kind.TASK_DONE, self.title, actor, task=self.pk)

    def settle(self, outcome: str, note: str, actor: User | None) -> None:
        """Say what became of an open promise (at closing): kept, broken or dropped."""
        if outcome not in self.Outcome.values:
            raise FieldError(
                f"promises.{self.pk}.outcome", f"must be one of {', '.join(self.Outcome.values)}"
            )
        self.outcome = outcome
        self.outcome_note = note.strip()[:500]
        self.done_at = self.done_at or timezone.now()
        self.next_escalation_at = None
        self.save(update_fields=["outcome", "outcome_note", "done_at", "next_escalation_at"])
        label = self.get_outcome_display().lower()
        self.case.log(
            Activity.Kind.TASK_DONE,
            f"promise {label}: {self.title}"
            + (f" ({self.outcome_note})" if self.outcome_note else ""),
            actor,
            task=self.pk,
            outcome=outcome,
        )


class Gesture(models.Model):
    """A recovery gesture made to the customer, as data: what, and what it was worth."""

    class Kind(models.TextChoices):
        CREDIT = "credit"
        DISCOUNT = "discount"
        EXTENDED_TRIAL = "extended_trial", "Extended trial"
        TRAINING_SESSION = "training_session", "Training session"
        EXECUTIVE_NOTE = "executive_note", "Executive note"
        PRIORITY_SUPPORT = "priority_support", "Priority support"
        ROADMAP_COMMITMENT = "roadmap_commitment", "Roadmap commitment"
        OTHER = "other"

    case = models.ForeignKey(FollowUpCase, on_delete=models.CASCADE, related_name="gestures")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    value_cents = models.BigIntegerField(
        null=True, blank=True, help_text="what it was worth, where it has a value"
    )
    currency = models.CharField(max_length=3, blank=True)
    note = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} on case {self.case_id}"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "kind": self.kind,
            "value": self.value_cents / 100 if self.value_cents is not None else None,
            "currency": self.currency or None,
            "note": self.note,
            "by": self.actor.display_name if self.actor else None,
            "created_at": self.created_at.isoformat(),
        }


class CheckBack(models.Model):
    """After a case is resolved, its owner asks whether it got better: one survey email
    with the 0–10 scale, whose answer comes back to the case (docs/closed-loop.md §10)."""

    case = models.ForeignKey(FollowUpCase, on_delete=models.CASCADE, related_name="check_backs")
    request = models.OneToOneField(
        SurveyRequest, on_delete=models.CASCADE, related_name="check_back"
    )
    response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"check-back on case {self.case_id}"


class Notification(models.Model):
    """An in-app notice for one user (the bell on every page)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    case = models.ForeignKey(
        FollowUpCase, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    text = models.CharField(max_length=500)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "read_at"], name="notification_user_unread")]

    def __str__(self) -> str:
        return self.text


class InboundMessage(models.Model):
    """An email that came in: a reply on its case, or held in quarantine for a person to place."""

    class Via(models.TextChoices):
        HTTP = "http"
        IMAP = "imap"
        SMTP = "smtp"

    class Status(models.TextChoices):
        MATCHED = "matched"
        AUTO_REPLY = "auto_reply", "Automatic reply"
        BOUNCE = "bounce", "Bounce report"
        QUARANTINED = "quarantined"
        DISMISSED = "dismissed"

    via = models.CharField(max_length=4, choices=Via.choices)
    status = models.CharField(max_length=12, choices=Status.choices)
    reason = models.CharField(max_length=300, blank=True, help_text="why it is in quarantine")
    dedupe_key = models.CharField(max_length=64, unique=True)
    message_id = models.CharField(max_length=998, blank=True)
    from_address = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    text = models.TextField(blank=True, help_text="the reply without quoted history")
    raw = models.BinaryField()
    case = models.ForeignKey(
        FollowUpCase, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound"
    )
    received_at = models.DateTimeField(default=timezone.now)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        indexes = [models.Index(fields=["status", "received_at"], name="inbound_status")]

    def __str__(self) -> str:
        return f"{self.from_address}: {self.subject} ({self.status})"

    def attach_to(self, case: FollowUpCase, actor: User | None) -> None:
        """Place a quarantined message on a case by hand (`actions.attach` then hands it to
        the case as the customer's reply)."""
        if self.status != self.Status.QUARANTINED:
            raise FieldError("status", "only quarantined messages can be placed on a case")
        self.case = case
        self.status = self.Status.MATCHED
        self.handled_by = actor
        self.save(update_fields=["case", "status", "handled_by"])

    def dismiss(self, actor: User | None) -> None:
        """Mark a quarantined message as not a customer reply (spam, misdirected)."""
        self.status = self.Status.DISMISSED
        self.handled_by = actor
        self.save(update_fields=["status", "handled_by"])


def open_filter() -> Q:
    """Cases not closed (open, contacted or in conversation)."""
    return ~Q(status=FollowUpCase.Status.CLOSED)


def open_at(moment: datetime) -> Q:
    """Cases that were open at `moment`: opened by then, and not closed or closed after
    it (what a backtest reads of the past; at the present it is `open_filter`)."""
    return Q(created_at__lte=moment) & (open_filter() | Q(closed_at__gt=moment))


def waiting_for_person(prefix: str = "") -> Q:
    """Open detractor cases whose action waits for a person (a call, a personal email):
    an owner's load, which routing caps. `prefix` reaches them from another model
    ("cases__" from a user)."""
    return (
        ~Q(**{f"{prefix}status": FollowUpCase.Status.CLOSED})
        & Q(**{f"{prefix}loop": FollowUpCase.Loop.DETRACTOR})
        & ~Q(**{f"{prefix}action__startswith": "automated_"})
    )


def overdue_filter() -> Q:
    """Open cases past their deadline with no first touch (what `is_overdue` says of one)."""
    return Q(first_touch_at__isnull=True, due_at__lte=timezone.now()) & open_filter()


def revenue_at_risk(cases: models.QuerySet[FollowUpCase]) -> int:
    """ARR in cents of the distinct accounts behind `cases`, each counted once."""
    total = Account.objects.filter(
        pk__in=cases.filter(account__isnull=False).values("account")
    ).aggregate(total=models.Sum("arr_cents"))["total"]
    return int(total or 0)
