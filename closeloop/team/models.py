"""The people who use closeloop: admins, managers, agents and viewers."""

from __future__ import annotations

from collections.abc import Collection

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


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
    monthly_report = models.BooleanField(
        default=False, help_text="Email this user the monthly report on the 1st."
    )
    booking_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="A scheduling link (Calendly, Cal.com…) the follow-up conversation offers.",
    )

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

    @classmethod
    def admins(cls) -> list[User]:
        """The active admins (and superusers): who hears when nobody else can act."""
        return list(
            cls.objects.filter(is_active=True).filter(
                models.Q(role=Role.ADMIN) | models.Q(is_superuser=True)
            )
        )

    def can_manage(self) -> bool:
        """Admins and managers oversee: the mail quarantine, surveys and their waves."""
        return self.is_admin() or self.role == Role.MANAGER

    def team(self) -> models.QuerySet[User]:
        """The user and everyone who reports to them, directly."""
        return User.objects.filter(models.Q(pk=self.pk) | models.Q(manager=self))


class Team(models.Model):
    """A group of users that routing rules can send cases to, served round-robin."""

    name = models.CharField(max_length=100, unique=True)
    members: models.ManyToManyField[User, Membership] = models.ManyToManyField(
        User, through="Membership", related_name="teams"
    )

    def __str__(self) -> str:
        return self.name

    def next_assignee(self, skip: Collection[int] = ()) -> User | None:
        """The member who has waited longest for a case (round-robin), marked as served now;
        members in `skip` (at capacity) are passed over.

        The team row is locked first so concurrent triage on PostgreSQL takes
        turns instead of handing two cases to the same person.
        """
        Team.objects.select_for_update().filter(pk=self.pk).first()
        membership = (
            Membership.objects.filter(team=self, user__is_active=True)
            .exclude(user__role=Role.VIEWER)
            .exclude(user_id__in=list(skip))
            .select_related("user")
            .order_by(models.F("last_assigned_at").asc(nulls_first=True), "id")
            .first()
        )
        if membership is None:
            return None
        membership.last_assigned_at = timezone.now()
        membership.save(update_fields=["last_assigned_at"])
        return membership.user

    def lead(self) -> User | None:
        """The team's lead: its first active manager (or admin) member."""
        return (
            self.members.filter(is_active=True, role__in=[Role.MANAGER, Role.ADMIN])
            .order_by("id")
            .first()
        )


class Membership(models.Model):
    """A user's place in a team; `last_assigned_at` drives the round-robin."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE)
    user = models.ForeignKey(User, on_delete=models.CASCADE)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"
