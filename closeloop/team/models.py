"""The people who use closeloop: admins, managers, agents and viewers."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    AGENT = "agent", "Agent"
    VIEWER = "viewer", "Viewer"


class User(AbstractUser):
    """A closeloop user. Agents report to a manager, who sees their team's work."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    manager = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
        help_text="Who is told when this user's cases are overdue.",
    )
    time_zone = models.CharField(max_length=64, default="UTC")

    @property
    def display_name(self) -> str:
        """The name customers see on mail from this user."""
        return self.get_full_name() or self.username

    def can_write(self) -> bool:
        """Viewers read; everyone else may change data."""
        return self.is_superuser or self.role != Role.VIEWER

    def is_admin(self) -> bool:
        """Admins (and Django superusers) change settings and users."""
        return self.is_superuser or self.role == Role.ADMIN

    def team(self) -> models.QuerySet[User]:
        """The user and everyone who reports to them, directly."""
        return User.objects.filter(models.Q(pk=self.pk) | models.Q(manager=self))
