"""API v1 for the follow-up: cases and what people do on them, channels, routing, policy.

Mounted on the same API as answers (/api/v1/), so one key and one OpenAPI
document cover everything. Changes go through `loop.actions` (and the settings through
`loop.configuration`), exactly as the pages' do, so every event lands on the timeline
and everyone who must hear of it does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from pydantic import field_validator

from closeloop.core.errors import FieldError
from closeloop.core.schemas import RefusesNul, StrictSchema
from closeloop.delivery.models import Channel
from closeloop.insights.filters import theme_matches
from closeloop.loop import actions, payloads, protocols, retriage
from closeloop.loop.configuration import (
    ChannelIn,
    RuleIn,
    TeamIn,
    active_user,
    add_channel,
    add_rule,
    save_team,
    save_template,
)
from closeloop.loop.models import (
    CALL_OUTCOMES,
    FollowUpCase,
    RoutingRule,
    TriagePolicy,
    open_filter,
    overdue_filter,
)
from closeloop.loop.outreach import Draft, Finding, lint, template_for
from closeloop.loop.policy import Action, PolicyConfig
from closeloop.team.models import Team

from .access import require_admin, require_write, sees_secrets
from .schemas import SentimentOut, ThemeTagOut

router = Router(tags=["follow-up"])


class In(StrictSchema):
    """Request bodies: unknown fields and NUL characters are refused by name."""


# --- cases ----------------------------------------------------------------------------------


class UserOut(Schema):
    id: int
    name: str
    email: str


class CasePersonOut(Schema):
    id: int
    email: str | None
    name: str
    external_id: str | None


class CaseAccountOut(Schema):
    id: int
    external_id: str | None
    name: str
    tier: str
    arr: float
    currency: str


class CaseResponseOut(Schema):
    id: int
    score: int
    comment: str
    created_at: datetime
    themes: list[ThemeTagOut]
    sentiment: SentimentOut | None


class CaseHealthOut(Schema):
    score: int
    was: int
    days: int
    reasons: list[tuple[int, str]] = Field(description="[points, why], the largest first")


class CaseOut(Schema):
    id: int
    url: str
    loop: str
    status: str
    resolution: str | None
    score: int | None = Field(description="the latest answer's; null for a health case")
    previous_score: int | None
    band: str | None
    high_value: bool
    action: str
    rule: str
    policy_version: int
    priority: float
    urgency: Literal["low", "normal", "high"] = Field(
        description="high when the customer said something that cannot wait"
    )
    detractor_type: str | None = Field(
        description="leaving, evaluating, invested or loyal; null until known"
    )
    due_at: datetime | None
    first_touch_at: datetime | None
    escalation_level: int
    overdue: bool
    owner: UserOut | None
    person: CasePersonOut
    account: CaseAccountOut | None
    response: CaseResponseOut | None = Field(description="null for a health case")
    health: CaseHealthOut | None = Field(
        description="a health case's fall (loop health, docs/insights.md); null otherwise"
    )
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class CasePage(Schema):
    count: int
    results: list[CaseOut]


class ReadThemeOut(Schema):
    slug: str
    name: str
    confidence: float


class ActivityOut(Schema):
    id: int
    kind: str
    text: str
    actor: str | None
    data: dict[str, Any]
    created_at: datetime
    themes_status: str = Field(
        description="for replies and call notes: pending until the worker has read them"
    )
    themes: list[ReadThemeOut] = Field(description="themes found in a reply or call note")
    sentiment: SentimentOut | None


class TaskOut(Schema):
    id: int
    kind: str
    title: str
    due_at: datetime
    done_at: datetime | None
    reminded_at: datetime | None
    escalation_level: int = Field(description="how far an overdue promise has escalated")
    outcome: str = Field(description="a promise's: kept, broken or dropped (empty while open)")
    outcome_note: str


class ConversationSummaryOut(Schema):
    themes: list[str]
    root_cause: str
    desired_fix: str
    impact: str
    detractor_type: Literal["leaving", "evaluating", "invested", "loyal", "unknown"]
    churn_intent: bool
    competitor: str | None
    wants_call: bool
    urgency: Literal["low", "normal", "high"]
    quotes: list[str]


class ConversationOut(Schema):
    url: str
    status: Literal["not_started", "active", "completed", "stopped", "taken_over"]
    messages: list[dict[str, Any]] = Field(
        description='[{"from": "closeloop" | "customer" | "owner", "text", "at", "step"}]'
    )
    summary: ConversationSummaryOut


class GestureOut(Schema):
    id: int
    kind: str
    value: float | None = Field(description="in `currency`, where the gesture has a value")
    currency: str | None
    note: str
    by: str | None
    created_at: datetime


class AnswerOut(Schema):
    title: str
    body: str


class SheetOut(Schema):
    theme: str
    name: str
    team: str | None = Field(description="the team that owns the theme's cases")
    next_steps: list[str]
    loop_in: str = Field(description="the department to loop in")
    approved_answers: list[AnswerOut] = Field(
        description="pre-approved answers, filled in for this customer"
    )


class CaseDetailOut(CaseOut):
    playbook: list[str]
    reply_address: str
    close_reason: str
    close_note: str
    routed_by: str
    watchers: list[str] = Field(description="emails of people also told of replies")
    activities: list[ActivityOut]
    tasks: list[TaskOut]
    gestures: list[GestureOut] = Field(description="recovery gestures made, with their value")
    conversation: ConversationOut | None = Field(
        description="the follow-up conversation (docs/conversation.md); null for non-detractors"
    )
    protocols: list[SheetOut] = Field(description="the protocol sheets of the case's themes")


class CaseFilter(Schema, RefusesNul):
    status: Literal["open", "contacted", "in_conversation", "closed", "active"] | None = Field(
        None, description="active = anything not closed"
    )
    loop: Literal["detractor", "passive", "promoter", "health"] | None = None
    email: str | None = Field(None, max_length=254, description="the customer's email")
    owner: str | None = Field(None, max_length=254, description="the owner's email")
    unassigned: bool | None = None
    overdue: bool | None = None
    escalated: bool | None = None
    band: Literal["severe", "moderate", "mild"] | None = None
    tier: str | None = Field(None, max_length=40)
    theme: str | None = Field(
        None, max_length=60, description="a theme's slug, or unclassified: the answer's themes"
    )
    detractor_type: Literal["leaving", "evaluating", "invested", "loyal", "unknown"] | None = Field(
        None, description="unknown = not set yet"
    )
    urgency: Literal["low", "normal", "high"] | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


def _cases() -> QuerySet[FollowUpCase]:
    return FollowUpCase.objects.select_related(
        "owner", "person", "account", "response", "policy"
    ).prefetch_related("response__theme_tags__theme")


def filter_cases(qs: QuerySet[FollowUpCase], f: CaseFilter) -> QuerySet[FollowUpCase]:
    """Apply the list filters of GET /cases."""
    if f.status == "active":
        qs = qs.filter(open_filter())
    elif f.status:
        qs = qs.filter(status=f.status)
    if f.loop:
        qs = qs.filter(loop=f.loop)
    if f.email:
        qs = qs.filter(person__email=f.email.strip().lower())
    if f.owner:
        qs = qs.filter(owner__email__iexact=f.owner)
    if f.unassigned is not None:
        qs = qs.filter(owner__isnull=f.unassigned)
    if f.overdue is True:
        qs = qs.filter(overdue_filter())
    elif f.overdue is False:
        qs = qs.exclude(overdue_filter())
    if f.escalated is not None:
        qs = qs.filter(escalation_level__gt=0) if f.escalated else qs.filter(escalation_level=0)
    if f.band:
        qs = qs.filter(band=f.band)
    if f.tier:
        qs = qs.filter(account__tier__iexact=f.tier)
    if f.theme:
        qs = qs.filter(theme_matches(f.theme, "response__"))
    if f.detractor_type:
        qs = qs.filter(detractor_type="" if f.detractor_type == "unknown" else f.detractor_type)
    if f.urgency:
        qs = qs.filter(urgency=f.urgency)
    return qs


@router.get("/cases", response=CasePage, summary="List follow-up cases")
def list_cases(request: HttpRequest, filters: Query[CaseFilter]) -> dict[str, Any]:
    """Cases by priority (highest first). `email=` finds one customer's cases."""
    qs = filter_cases(_cases(), filters).order_by("-priority", "-id")
    page = list(qs[filters.offset : filters.offset + filters.limit])
    return {"count": qs.count(), "results": [payloads.case_json(c) for c in page]}


def _detail(case: FollowUpCase) -> dict[str, Any]:
    body = payloads.case_json(case)
    body.update(
        playbook=case.playbook,
        reply_address=case.reply_address,
        close_reason=case.close_reason,
        close_note=case.close_note,
        routed_by=case.routed_by,
        watchers=sorted(u.email for u in case.watchers.all()),
        activities=[
            {
                "id": a.pk,
                "kind": a.kind,
                "text": a.text,
                "actor": a.actor.display_name if a.actor else None,
                "data": a.data,
                "created_at": a.created_at,
                "themes_status": a.themes_status,
                "themes": a.themes_json(),
                "sentiment": a.sentiment_json(),
            }
            for a in case.activities.select_related("actor").order_by("created_at", "id")
        ],
        tasks=list(
            case.tasks.order_by("due_at").values(
                "id",
                "kind",
                "title",
                "due_at",
                "done_at",
                "reminded_at",
                "escalation_level",
                "outcome",
                "outcome_note",
            )
        ),
        gestures=[g.as_json() for g in case.gestures.select_related("actor").order_by("id")],
        conversation=payloads.conversation_json(payloads.conversation_of(case)),
        protocols=[sheet.as_json() for sheet in protocols.sheets_for(case)],
    )
    return body


def _case(case_id: int) -> FollowUpCase:
    return get_object_or_404(_cases(), pk=case_id)


@router.get("/cases/{case_id}", response=CaseDetailOut, summary="One case with its timeline")
def get_case(request: HttpRequest, case_id: int) -> dict[str, Any]:
    """The case, its playbook, its timeline and its tasks."""
    return _detail(_case(case_id))


class AssignIn(In):
    owner: str | None = Field(..., max_length=254, description="owner's email; null = unassign")
    note: str = Field("", max_length=2000)


@router.post("/cases/{case_id}/assign", response=CaseDetailOut, summary="Reassign a case")
def assign_case(request: HttpRequest, case_id: int, payload: AssignIn) -> dict[str, Any]:
    require_write(request)
    with transaction.atomic():
        case = _case(case_id)
        owner = active_user(payload.owner, "owner") if payload.owner else None
        actions.assign(case, owner, None, payload.note)
    return _detail(case)


class NoteIn(In):
    text: str = Field(..., min_length=1, max_length=10_000)


@router.post("/cases/{case_id}/notes", response=CaseDetailOut, summary="Add a note")
def add_note(request: HttpRequest, case_id: int, payload: NoteIn) -> dict[str, Any]:
    require_write(request)
    with transaction.atomic():
        case = _case(case_id)
        actions.add_note(case, payload.text, None)
    return _detail(case)


class CallIn(In):
    outcome: str = Field(..., description=" | ".join(CALL_OUTCOMES))
    note: str = Field("", max_length=10_000)

    @field_validator("outcome")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CALL_OUTCOMES:
            raise ValueError(f"must be one of {', '.join(CALL_OUTCOMES)}")
        return value


@router.post("/cases/{case_id}/calls", response=CaseDetailOut, summary="Log a call")
def log_call(request: HttpRequest, case_id: int, payload: CallIn) -> dict[str, Any]:
    require_write(request)
    with transaction.atomic():
        case = _case(case_id)
        actions.log_call(case, payload.outcome, payload.note, None)
    return _detail(case)


class PromiseOutcomeIn(In):
    id: int = Field(..., description="the commitment task's id")
    outcome: Literal["kept", "broken", "dropped"]
    note: str = Field("", max_length=500)


class CloseIn(In):
    resolution: Literal["resolved", "cant_fix", "no_response"]
    reason: str = Field(..., min_length=1, max_length=200)
    note: str = Field(..., min_length=1, max_length=10_000)
    promises: list[PromiseOutcomeIn] = Field(
        default_factory=list,
        max_length=200,
        description="what became of each promise still open on the case; required for each",
    )


@router.post("/cases/{case_id}/close", response=CaseDetailOut, summary="Close with a reason")
def close_case(request: HttpRequest, case_id: int, payload: CloseIn) -> dict[str, Any]:
    require_write(request)
    with transaction.atomic():
        case = _case(case_id)
        promises: dict[int, tuple[str, str]] = {
            p.id: (str(p.outcome), p.note) for p in payload.promises
        }
        actions.close(case, payload.resolution, payload.reason, payload.note, None, promises)
    return _detail(case)


class GestureIn(In):
    kind: Literal[
        "credit",
        "discount",
        "extended_trial",
        "training_session",
        "executive_note",
        "priority_support",
        "roadmap_commitment",
        "other",
    ]
    value: float | None = Field(None, ge=0, le=100_000_000, description="in `currency` units")
    currency: str = Field("", max_length=3, description="ISO 4217; default the account's")
    note: str = Field("", max_length=500)


@router.post("/cases/{case_id}/gestures", response=CaseDetailOut, summary="Log a recovery gesture")
def add_gesture(request: HttpRequest, case_id: int, payload: GestureIn) -> dict[str, Any]:
    """A credit, discount, extended trial, training session, executive note, priority
    support, roadmap commitment or other gesture, with its value where it has one."""
    require_write(request)
    with transaction.atomic():
        case = _case(case_id)
        actions.give_gesture(
            case, payload.kind, payload.value, payload.currency, payload.note, None
        )
    return _detail(case)


class TypeIn(In):
    detractor_type: str = Field(
        ..., max_length=12, description="leaving, evaluating, invested, loyal"
    )


@router.post("/cases/{case_id}/type", response=CaseDetailOut, summary="Set the detractor type")
def set_type(request: HttpRequest, case_id: int, payload: TypeIn) -> dict[str, Any]:
    """What kind of detractor this is (docs/domain.md §4): it picks the type's playbook
    and deadline from the policy. A person's type is kept over what the conversation or
    the comment's signals suggest. `leaving` tells the owner and, at a top account, the
    executive sponsor at once."""
    require_write(request)
    with transaction.atomic():
        case = _case(case_id)
        actions.set_type(case, payload.detractor_type, None)
    return _detail(case)


@router.post(
    "/cases/{case_id}/retriage", response=CaseDetailOut, summary="Apply the current policy"
)
def retriage_case(request: HttpRequest, case_id: int) -> dict[str, Any]:
    """A new policy version leaves open cases as they were; this puts one open case under
    the policy in force: its action and rule decided again, an unmet deadline set again
    from when it opened (admin key; 422 naming `status` for a closed case)."""
    require_admin(request)
    with transaction.atomic():
        case = _case(case_id)
        retriage.retriage(case, None)
    return _detail(case)


class ReopenIn(In):
    reason: str = Field(..., min_length=1, max_length=2000)


@router.post("/cases/{case_id}/reopen", response=CaseDetailOut, summary="Reopen a closed case")
def reopen_case(request: HttpRequest, case_id: int, payload: ReopenIn) -> dict[str, Any]:
    require_write(request)
    with transaction.atomic():
        case = _case(case_id)
        actions.reopen(case, payload.reason, None)
    return _detail(case)


class WatcherIn(In):
    email: str = Field(..., max_length=254, description="a closeloop user's email")


@router.post(
    "/cases/{case_id}/watchers",
    response=CaseDetailOut,
    summary="Add someone who hears of the customer's replies",
)
def add_watcher(request: HttpRequest, case_id: int, payload: WatcherIn) -> dict[str, Any]:
    """E.g. the account's executive sponsor or a senior leader writing a recovery note."""
    require_write(request)
    with transaction.atomic():
        case = _case(case_id)
        case.watch(active_user(payload.email, "email"), None)
    return _detail(case)


class CommitIn(In):
    promise: str = Field(..., min_length=1, max_length=300)
    due_at: datetime


@router.post(
    "/cases/{case_id}/commitments", response=CaseDetailOut, summary="Record a promise and its date"
)
def commit(request: HttpRequest, case_id: int, payload: CommitIn) -> dict[str, Any]:
    require_write(request)
    due = payload.due_at
    if timezone.is_naive(due):
        raise FieldError("due_at", "give a time zone offset, e.g. 2026-12-01T17:00:00Z")
    with transaction.atomic():
        case = _case(case_id)
        case.commit(payload.promise, due, None)
    return _detail(case)


# --- channels --------------------------------------------------------------------------------


class ChannelOut(Schema):
    id: int
    kind: str
    format: str
    name: str
    email: str
    url: str = Field(description="admin keys only; other keys see the scheme and host")
    secret: str = Field(
        description="HMAC key of the X-Closeloop-Signature header (webhooks); admin keys only"
    )
    events: list[str]
    bands: list[str]
    tiers: list[str]
    team: str | None
    active: bool

    @staticmethod
    def resolve_events(obj: Channel) -> list[str]:
        return obj.subscribed_events

    @staticmethod
    def resolve_url(obj: Channel, context: dict[str, Any]) -> str:
        if not obj.url or sees_secrets(context["request"]):
            return obj.url
        return f"{urlsplit(obj.url).scheme}://{urlsplit(obj.url).hostname}/…"

    @staticmethod
    def resolve_secret(obj: Channel, context: dict[str, Any]) -> str:
        return obj.secret if sees_secrets(context["request"]) else ""

    @staticmethod
    def resolve_team(obj: Channel) -> str | None:
        return obj.team.name if obj.team else None


@router.get("/channels", response=list[ChannelOut], summary="Notification channels")
def list_channels(request: HttpRequest) -> QuerySet[Channel]:
    return Channel.objects.select_related("team").order_by("id")


@router.post("/channels", response={201: ChannelOut}, summary="Add a notification channel")
def create_channel(request: HttpRequest, payload: ChannelIn) -> Status[Channel]:
    """Slack (incoming-webhook URL), signed webhook (URL) or email; no filter = every detractor."""
    require_admin(request)
    return Status(201, add_channel(payload))


@router.delete("/channels/{channel_id}", response={204: None}, summary="Remove a channel")
def delete_channel(request: HttpRequest, channel_id: int) -> Status[None]:
    require_admin(request)
    get_object_or_404(Channel, pk=channel_id).delete()
    return Status(204, None)


# --- teams and routing rules ------------------------------------------------------------------


class TeamOut(Schema):
    id: int
    name: str
    members: list[str]

    @staticmethod
    def resolve_members(obj: Team) -> list[str]:
        return [u.email for u in obj.members.order_by("email")]


@router.get("/teams", response=list[TeamOut], summary="Teams")
def list_teams(request: HttpRequest) -> QuerySet[Team]:
    return Team.objects.prefetch_related("members").order_by("name")


@router.put("/teams", response=TeamOut, summary="Create or replace a team by name")
def put_team(request: HttpRequest, payload: TeamIn) -> Team:
    require_admin(request)
    return save_team(payload)


class RuleOut(Schema):
    id: int
    name: str
    position: int
    tiers: list[str]
    property_key: str
    property_value: str
    team: str
    active: bool

    @staticmethod
    def resolve_team(obj: RoutingRule) -> str:
        return obj.team.name


@router.get("/routing-rules", response=list[RuleOut], summary="Routing rules, in order")
def list_rules(request: HttpRequest) -> QuerySet[RoutingRule]:
    return RoutingRule.objects.select_related("team")


@router.post("/routing-rules", response={201: RuleOut}, summary="Add a routing rule")
def create_rule(request: HttpRequest, payload: RuleIn) -> Status[RoutingRule]:
    """Cases of accounts without an owner go to the first matching rule's team, round-robin."""
    require_admin(request)
    return Status(201, add_rule(payload))


@router.delete("/routing-rules/{rule_id}", response={204: None}, summary="Remove a rule")
def delete_rule(request: HttpRequest, rule_id: int) -> Status[None]:
    require_admin(request)
    get_object_or_404(RoutingRule, pk=rule_id).delete()
    return Status(204, None)


# --- triage policy and templates -----------------------------------------------------------


class PolicyOut(Schema):
    version: int
    created_at: datetime
    config: PolicyConfig


@router.get("/triage-policy", response=PolicyOut, summary="The triage policy in force")
def get_policy(request: HttpRequest) -> dict[str, Any]:
    policy = TriagePolicy.current()
    return {"version": policy.version, "created_at": policy.created_at, "config": policy.rules}


@router.put("/triage-policy", response=PolicyOut, summary="Save a new policy version")
def put_policy(request: HttpRequest, payload: PolicyConfig) -> dict[str, Any]:
    """The whole policy; saved as the next version. Existing cases keep theirs."""
    require_admin(request)
    policy = TriagePolicy.save_new_version(payload, None)
    return {"version": policy.version, "created_at": policy.created_at, "config": policy.rules}


class TemplateIn(In):
    subject: str = Field(..., min_length=1, max_length=200)
    body: str = Field(..., min_length=1, max_length=10_000)


class FindingOut(Schema):
    rule: str
    message: str


class TemplateOut(Schema):
    action: str
    locale: str
    subject: str
    body: str
    automated: bool
    findings: list[FindingOut]


def _template_json(
    action: Action, locale: str, draft: Draft, findings: list[Finding]
) -> dict[str, Any]:
    return {
        "action": action.value,
        "locale": locale,
        "subject": draft.subject,
        "body": draft.body,
        "automated": action.automated,
        "findings": [f.__dict__ for f in findings],
    }


@router.get("/templates/{action}/{locale}", response=TemplateOut, summary="An outreach template")
def get_template(request: HttpRequest, action: Action, locale: str) -> dict[str, Any]:
    draft = template_for(action, locale)
    return _template_json(action, locale, draft, lint(draft.subject, draft.body, locale))


@router.put("/templates/{action}/{locale}", response=TemplateOut, summary="Save a template")
def put_template(
    request: HttpRequest, action: Action, locale: str, payload: TemplateIn
) -> dict[str, Any]:
    """Automated templates must pass the linter (422 lists what to fix); personal ones get
    the findings back as advice."""
    require_admin(request)
    if not 2 <= len(locale) <= 16:
        raise FieldError("locale", "must be 2–16 characters, e.g. en or pt-BR")
    findings = save_template(action, locale, payload.subject, payload.body, None)
    return _template_json(action, locale, Draft(payload.subject, payload.body), findings)
