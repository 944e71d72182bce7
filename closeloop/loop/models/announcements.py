"""A fix that shipped, and the cases it answers: the draft, choosing its cases, and the
email each customer reads (`loop.actions.send_announcement` sends it)."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from closeloop.core.errors import FieldError
from closeloop.surveys.models import Response

from .. import outreach
from .cases import FollowUpCase


class Announcement(models.Model):
    """A fix that shipped, told personally to each customer whose case asked for it.

    It starts as a draft: what shipped, a few words more, the message, and the
    cases it goes to (picked by hand, by a theme, by a response tag, or any of
    these). Sending
    queues one email per person from their case's owner ("you told us X; we
    shipped Y"), logs it on every chosen case, and can close the open ones as
    resolved.
    """

    class Status(models.TextChoices):
        DRAFT = "draft"
        SENT = "sent"

    title = models.CharField(max_length=200, help_text="what shipped, in a line")
    details = models.TextField(blank=True, help_text="a few words more for customers")
    tag = models.CharField(max_length=50, blank=True, help_text="the response tag it answers")
    theme = models.ForeignKey(
        "themes.Theme",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="announcements",
        help_text="the theme it answers",
    )
    subject = models.CharField(max_length=300, default=outreach.FIX_SHIPPED.subject)
    body = models.TextField(default=outreach.FIX_SHIPPED.body)
    resolve = models.BooleanField(default=False, help_text="close open cases as resolved")
    cases = models.ManyToManyField(FollowUpCase, related_name="announcements", blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    emailed = models.PositiveIntegerField(default=0, help_text="people an email was queued for")
    not_emailed = models.PositiveIntegerField(default=0, help_text="people who could not be")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.title

    def validate_draft(self) -> None:
        """Refuse a draft that cannot be sent as written (names the field)."""
        if not self.title.strip():
            raise FieldError("title", "say what shipped")
        if not self.subject.strip():
            raise FieldError("subject", "an email needs a subject")
        if not self.body.strip():
            raise FieldError("body", "an email needs a body")
        try:
            outreach.check_fix_template(self.subject, self.body)
        except FieldError as exc:
            raise FieldError(exc.field, exc.reason) from exc

    @classmethod
    def draft(cls, case_ids: list[int], **fields: Any) -> Announcement:
        """Check and save a new draft; its cases are `case_ids` plus those of its theme
        and of its tag."""
        announcement = cls(**fields)
        announcement.validate_draft()
        announcement.save()
        announcement.choose(
            case_ids,
            by_tag=bool(announcement.tag.strip()),
            by_theme=announcement.theme_id is not None,
        )
        return announcement

    @staticmethod
    def themed_cases(theme: Any) -> models.QuerySet[FollowUpCase]:
        """Every case one of whose answers has the theme (found by the model or a person)."""
        if theme is None:
            return FollowUpCase.objects.none()
        return FollowUpCase.objects.filter(
            Q(response__theme_tags__theme=theme) | Q(responses__theme_tags__theme=theme)
        ).distinct()

    @staticmethod
    def tagged_cases(tag: str) -> models.QuerySet[FollowUpCase]:
        """Every case one of whose answers carries `tag` (any letter case)."""
        wanted = tag.strip().lower()
        if not wanted:
            return FollowUpCase.objects.none()
        candidates = Response.objects.filter(tags__icontains=json.dumps(wanted)[1:-1])
        ids = [
            pk
            for pk, tags in candidates.values_list("pk", "tags")
            if wanted in {str(t).lower() for t in tags}
        ]
        return FollowUpCase.objects.filter(Q(response__in=ids) | Q(responses__in=ids)).distinct()

    def choose(
        self, case_ids: list[int] | None = None, by_tag: bool = False, by_theme: bool = False
    ) -> None:
        """Set the cases: the listed ids (all must exist), plus the tag's cases if `by_tag`
        and the theme's if `by_theme`."""
        if self.status == self.Status.SENT:
            raise FieldError("status", "this announcement was already sent")
        chosen: set[int] = set()
        if case_ids:
            wanted = set(case_ids)
            found = set(FollowUpCase.objects.filter(pk__in=wanted).values_list("pk", flat=True))
            missing = sorted(wanted - found)
            if missing:
                raise FieldError("case_ids", f"no case with id {', '.join(map(str, missing))}")
            chosen |= found
        if by_tag:
            if not self.tag.strip():
                raise FieldError("tag", "name a tag to choose cases by")
            chosen |= set(self.tagged_cases(self.tag).values_list("pk", flat=True))
        if by_theme:
            if self.theme_id is None:
                raise FieldError("theme", "choose a theme to choose cases by")
            chosen |= set(self.themed_cases(self.theme).values_list("pk", flat=True))
        self.cases.set(chosen)

    def chosen_cases(self) -> list[FollowUpCase]:
        """The cases it answers, newest first, with what rendering their emails reads."""
        return list(
            self.cases.select_related("person", "owner", "account", "response")
            .prefetch_related("responses__theme_tags", "response__theme_tags")
            .order_by("-created_at")
        )

    def preview(self, cases: list[FollowUpCase]) -> tuple[FollowUpCase, str, str] | None:
        """The first case's email (subject, body) as its customer will read it."""
        if not cases:
            return None
        return (cases[0], *self.render(cases[0]))

    def comment_for(self, case: FollowUpCase) -> str:
        """What the customer told us: the comment of the answer with the theme (or the
        tag), else their latest comment."""
        answers = sorted(
            {r for r in (case.response, *case.responses.all()) if r is not None},
            key=lambda r: r.created_at,
            reverse=True,
        )
        tag = self.tag.strip().lower()
        with_comment = [r for r in answers if r.comment.strip()]
        for response in with_comment:
            if self.theme_id and any(
                t.theme_id == self.theme_id for t in response.theme_tags.all()
            ):
                return response.comment
        for response in with_comment:
            if tag and tag in {str(t).lower() for t in response.tags}:
                return response.comment
        return with_comment[0].comment if with_comment else ""

    def render(self, case: FollowUpCase) -> tuple[str, str]:
        """Subject and body of this announcement's email to the case's customer."""
        values = outreach.fix_values(case, self.title, self.details, self.comment_for(case))
        body = outreach.fill(self.body, values, "body")
        # An empty {details} would leave a blank line of its own; fold it away.
        body = re.sub(r"\n{3,}", "\n\n", body)
        return outreach.fill(self.subject, values, "subject"), body
