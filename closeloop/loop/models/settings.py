"""What admins set for the follow-up: the triage policy's versions, routing rules and the
outreach templates."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from closeloop.surveys.models import Account, Person
from closeloop.team.models import Team, User

from ..policy import Action, PolicyConfig


class TriagePolicy(models.Model):
    """One saved version of the triage policy; the newest is in force."""

    version = models.PositiveIntegerField(unique=True)
    config = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"triage policy v{self.version}"

    @property
    def rules(self) -> PolicyConfig:
        """The validated configuration of this version."""
        cached: PolicyConfig | None = getattr(self, "_rules", None)
        if cached is None:
            cached = PolicyConfig.model_validate(self.config)
            self._rules = cached
        return cached

    @classmethod
    def current(cls) -> TriagePolicy:
        """The version in force; version 1 holds the defaults until an admin saves one."""
        policy = cls.objects.order_by("-version").first()
        if policy is None:
            policy, _ = cls.objects.get_or_create(
                version=1, defaults={"config": PolicyConfig().model_dump(mode="json")}
            )
        return policy

    @classmethod
    def save_new_version(cls, config: PolicyConfig, by: User | None) -> TriagePolicy:
        """Store `config` as the next version; cases keep pointing at the version that made them."""
        with transaction.atomic():
            latest = cls.objects.select_for_update().order_by("-version").first()
            return cls.objects.create(
                version=(latest.version + 1) if latest else 1,
                config=config.model_dump(mode="json"),
                created_by=by,
            )


class RoutingRule(models.Model):
    """Sends cases of accounts without an owner to a team, by tier and/or a property value.

    Rules are tried by position; an empty rule matches everything (a catch-all).
    """

    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=100)
    tiers = models.JSONField(default=list, blank=True, help_text="account tiers; empty = any")
    property_key = models.CharField(
        max_length=100, blank=True, help_text="an account or person property, e.g. region"
    )
    property_value = models.CharField(max_length=200, blank=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="routing_rules")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name

    def matches(self, account: Account | None, person: Person) -> bool:
        """Whether this rule applies to an answer from `person` at `account`."""
        tier = account.tier.lower() if account is not None else ""
        if self.tiers and tier not in {t.lower() for t in self.tiers}:
            return False
        if self.property_key:
            props = {**(account.properties if account else {}), **person.properties}
            if str(props.get(self.property_key, "")) != self.property_value:
                return False
        return True


class OutreachTemplate(models.Model):
    """The first email of an action, per locale, with {variables} filled from the case."""

    action = models.CharField(max_length=32, choices=[(a.value, a.label) for a in Action])
    locale = models.CharField(max_length=16, default="en")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["action", "locale"], name="template_action_locale")
        ]

    def __str__(self) -> str:
        return f"{self.action} ({self.locale})"
