"""What a theme's owner is doing about it: roadmap items with a status and a target date
(docs/closed-loop.md §11). Shipping one opens the "fix shipped" announcement for the
theme's customers, with the item's text filled in."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from closeloop.core.errors import FieldError

from .announcements import Announcement


class RoadmapItem(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned"
        IN_PROGRESS = "in_progress", "In progress"
        SHIPPED = "shipped"
        DROPPED = "dropped"

    theme = models.ForeignKey(
        "themes.Theme", on_delete=models.CASCADE, related_name="roadmap_items"
    )
    title = models.CharField(max_length=200)
    details = models.TextField(blank=True, help_text="a few words more, for customers")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLANNED)
    target_date = models.DateField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    announcement = models.ForeignKey(
        Announcement,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="roadmap_items",
        help_text="the fix-shipped announcement opened when it shipped",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["status", "target_date", "id"]

    def __str__(self) -> str:
        return self.title

    @staticmethod
    def may_plan(user: Any, theme: Any) -> bool:
        """Who keeps a theme's roadmap on the pages: its owner, managers and admins."""
        return bool(user.can_write() and (user.can_manage() or theme.owner_id == user.pk))

    @staticmethod
    def check_fields(
        title: str, status: str, target_date: Any, was: date | None = None
    ) -> tuple[str, str, date | None]:
        """The cleaned title, status and target date, or a FieldError naming the field.
        A new target date (other than `was`) cannot be in the past."""
        title, status, target = RoadmapItem._fields(title, status, target_date)
        if target is not None and target != was and target < timezone.localdate():
            raise FieldError("target_date", "is in the past")
        return title, status, target

    @staticmethod
    def _fields(title: str, status: str, target_date: Any) -> tuple[str, str, date | None]:
        title = (title or "").strip()
        if not title:
            raise FieldError("title", "say what will change")
        if len(title) > 200 or "\x00" in title:
            raise FieldError("title", "at most 200 characters, no NUL")
        if status not in RoadmapItem.Status.values:
            raise FieldError("status", f"must be one of {', '.join(RoadmapItem.Status.values)}")
        if target_date in (None, ""):
            return title, status, None
        if isinstance(target_date, date):
            return title, status, target_date
        try:
            return title, status, date.fromisoformat(str(target_date).strip())
        except ValueError:
            raise FieldError("target_date", "must be a date, YYYY-MM-DD") from None

    @classmethod
    def add(
        cls,
        theme: Any,
        user: Any,
        title: str,
        status: str = "planned",
        target_date: Any = None,
        details: str = "",
    ) -> RoadmapItem:
        title, status, target = cls.check_fields(title, status, target_date)
        if status == cls.Status.SHIPPED:
            raise FieldError("status", "add it as planned or in progress, then ship it")
        return cls.objects.create(
            theme=theme,
            title=title,
            status=status,
            target_date=target,
            details=details.strip()[:2000],
            created_by=user,
        )

    def change(self, user: Any, **fields: Any) -> Announcement | None:
        """Edit the item; moving it to shipped opens its announcement (returned)."""
        if self.status == self.Status.SHIPPED:
            raise FieldError("status", "it has shipped; add a new item for more work")
        title, status, target = self.check_fields(
            fields.get("title", self.title),
            fields.get("status", self.status),
            fields.get("target_date", self.target_date),
            was=self.target_date,
        )
        self.title, self.target_date = title, target
        if "details" in fields:
            self.details = str(fields["details"]).strip()[:2000]
        self.updated_at = timezone.now()
        if status != self.Status.SHIPPED:
            self.status = status
            self.save()
            return None
        return self.ship(user)

    @transaction.atomic
    def ship(self, user: Any) -> Announcement:
        """Shipped: the fix-shipped announcement for every case of the theme, as a draft
        with the item's words, for the owner to review and send."""
        self.status, self.shipped_at = self.Status.SHIPPED, timezone.now()
        self.announcement = Announcement.draft(
            [], title=self.title, details=self.details, theme=self.theme, created_by=user
        )
        self.save()
        return self.announcement

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "theme": self.theme.slug,
            "title": self.title,
            "details": self.details,
            "status": self.status,
            "target_date": self.target_date.isoformat() if self.target_date else None,
            "shipped_at": self.shipped_at.isoformat() if self.shipped_at else None,
            "announcement_id": self.announcement_id,
            "overdue": bool(
                self.target_date
                and self.status in (self.Status.PLANNED, self.Status.IN_PROGRESS)
                and self.target_date < timezone.localdate()
            ),
        }
