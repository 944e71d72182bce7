"""Settings admins change, for the API and the settings pages alike: notification
channels, teams, routing rules and outreach templates. (A triage policy saves itself as
a new version: `TriagePolicy.save_new_version`.) Each refuses bad input with a
FieldError naming the field, and writes nothing then."""

from __future__ import annotations

from typing import Literal

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.utils import timezone
from pydantic import Field, model_validator

from closeloop.core.errors import FieldError
from closeloop.core.schemas import StrictSchema
from closeloop.delivery import outbound
from closeloop.delivery.models import DELIGHTED_EVENTS, EVENTS, Channel
from closeloop.team.models import Membership, Team, User

from .models import OutreachTemplate, RoutingRule
from .outreach import Finding, lint
from .policy import Action


def active_user(email: str, field: str) -> User:
    """The active user with this email (any case), or a FieldError naming `field`."""
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    if user is None:
        raise FieldError(field, f"no active closeloop user has the email {email}")
    return user


def find_team(name: str | None, field: str) -> Team | None:
    """The team of this name (any case); None for no name; a FieldError naming `field`."""
    if not name:
        return None
    team = Team.objects.filter(name__iexact=name).first()
    if team is None:
        raise FieldError(field, f"no team is named {name!r}")
    return team


class ChannelIn(StrictSchema):
    """A notification channel to add."""

    kind: Literal["slack", "webhook", "email"]
    format: Literal["closeloop", "delighted"] = Field(
        "closeloop",
        description="webhooks: closeloop's events, or Delighted's (survey_response.created, "
        "survey_response.updated, unsubscribe.created) in Delighted's shape",
    )
    name: str = Field("", max_length=100)
    url: str | None = Field(None, max_length=500, description="slack and webhook")
    email: str | None = Field(None, max_length=254, description="email")
    events: list[str] = Field(default_factory=list, description="empty = the default set")
    bands: list[Literal["severe", "moderate", "mild"]] = Field(default_factory=list)
    tiers: list[str] = Field(default_factory=list, max_length=50)
    team: str | None = Field(None, max_length=100, description="a team's name")

    @model_validator(mode="after")
    def _events(self) -> ChannelIn:
        if self.format == "delighted" and self.kind != "webhook":
            raise ValueError("format: delighted is for webhooks only")
        known = DELIGHTED_EVENTS if self.format == "delighted" else EVENTS
        unknown = [e for e in self.events if e not in known]
        if unknown:
            raise ValueError(f"events: unknown event {unknown[0]!r}; known: {', '.join(known)}")
        return self


def check_target(payload: ChannelIn) -> None:
    """The channel's address is usable: a valid email, or an http(s) URL we may call."""
    if payload.kind == "email":
        if not payload.email:
            raise FieldError("email", "an email channel needs an email address")
        try:
            validate_email(payload.email)
        except ValidationError as exc:
            raise FieldError("email", "is not a valid email address") from exc
        return
    if not payload.url:
        raise FieldError("url", f"a {payload.kind} channel needs a url")
    if not payload.url.isascii() or any(ch <= " " or ch == "\x7f" for ch in payload.url):
        raise FieldError(
            "url", "must be ASCII without spaces or control characters (percent-encode the rest)"
        )
    try:
        URLValidator(schemes=["http", "https"])(payload.url)
    except ValidationError as exc:
        raise FieldError("url", "must be an http(s) URL") from exc
    refused = outbound.refusal(payload.url)
    if refused:
        raise FieldError("url", refused)


def add_channel(payload: ChannelIn) -> Channel:
    """Create a channel from a validated request (the API's and the settings page's)."""
    check_target(payload)
    return Channel.objects.create(
        kind=payload.kind,
        format=payload.format,
        name=payload.name,
        url=payload.url or "",
        email=payload.email or "",
        events=payload.events,
        bands=list(payload.bands),
        tiers=payload.tiers,
        team=find_team(payload.team, "team"),
    )


class TeamIn(StrictSchema):
    """A team and its members."""

    name: str = Field(..., min_length=1, max_length=100)
    members: list[str] = Field(default_factory=list, description="members' emails")


def save_team(payload: TeamIn) -> Team:
    """Create the team or replace its members (the API's and the settings page's)."""
    members = [active_user(email, f"members.{i}") for i, email in enumerate(payload.members)]
    with transaction.atomic():
        team, _ = Team.objects.get_or_create(name=payload.name)
        Membership.objects.filter(team=team).exclude(user__in=members).delete()
        for user in members:
            Membership.objects.get_or_create(team=team, user=user)
    return team


class RuleIn(StrictSchema):
    """A routing rule: which accounts, to which team."""

    name: str = Field(..., min_length=1, max_length=100)
    position: int = Field(0, ge=0, le=10_000)
    tiers: list[str] = Field(default_factory=list, max_length=50)
    property_key: str = Field("", max_length=100)
    property_value: str = Field("", max_length=200)
    team: str = Field(..., min_length=1, max_length=100)


def add_rule(payload: RuleIn) -> RoutingRule:
    """Create a routing rule (the API's and the settings page's)."""
    team = find_team(payload.team, "team")
    assert team is not None
    return RoutingRule.objects.create(
        name=payload.name,
        position=payload.position,
        tiers=payload.tiers,
        property_key=payload.property_key,
        property_value=payload.property_value,
        team=team,
    )


def save_template(
    action: Action, locale: str, subject: str, body: str, by: User | None
) -> list[Finding]:
    """Lint and save a template (the API's and the settings page's); returns the findings.

    Raises FieldError naming `body` for each finding when a variable is unknown, or when
    an automated template has any finding.
    """
    findings = lint(subject, body, locale)
    if any(f.rule == "variables" for f in findings) or (action.automated and findings):
        problems = [("body", f"{f.rule}: {f.message}") for f in findings]
        raise FieldError(*problems[0], also=problems[1:])
    OutreachTemplate.objects.update_or_create(
        action=action.value,
        locale=locale,
        defaults={
            "subject": subject,
            "body": body,
            "updated_by": by,
            "updated_at": timezone.now(),
        },
    )
    return findings
