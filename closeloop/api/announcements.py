"""API v1 for "fix shipped" announcements: tell every customer who raised an issue it is fixed.

A draft is created with what shipped and the cases it answers (by id, by
response tag, or both); sending queues one personal email per person and logs
it on every case. The model (`loop.models.Announcement`) holds the rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from closeloop.core.errors import FieldError
from closeloop.delivery.models import Delivery
from closeloop.loop import actions
from closeloop.loop.models import Announcement
from closeloop.loop.outreach import FIX_SHIPPED, FIX_VARIABLES
from closeloop.themes.models import Theme

from .access import require_admin
from .cases import In

router = Router(tags=["announcements"])


CaseId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class AnnouncementIn(In):
    title: str = Field(..., min_length=1, max_length=200, description="what shipped, in a line")
    details: str = Field("", max_length=2000)
    tag: str = Field("", max_length=50, description="choose the cases whose answers carry it")
    theme: str = Field("", max_length=60, description="a theme's slug: choose its cases")
    case_ids: list[CaseId] = Field(default_factory=list, max_length=10_000)
    subject: str = Field(FIX_SHIPPED.subject, min_length=1, max_length=300)
    body: str = Field(FIX_SHIPPED.body, min_length=1, max_length=10_000)
    resolve: bool = Field(False, description="close open cases as resolved when sent")


class CasesIn(In):
    case_ids: list[CaseId] = Field(default_factory=list, max_length=10_000)
    by_tag: bool = Field(False, description="add every case of the announcement's tag")
    by_theme: bool = Field(False, description="add every case of the announcement's theme")


class PreviewOut(Schema):
    case_id: int
    to: str | None
    subject: str
    body: str


class AnnouncementOut(Schema):
    id: int
    title: str
    details: str
    tag: str
    theme: str | None = Field(description="the slug of the theme it answers")
    subject: str
    body: str
    resolve: bool
    status: str
    case_ids: list[int]
    emailed: int
    not_emailed: int
    deliveries: dict[str, int] = Field(description="the emails' states: pending, sent, failed")
    created_at: datetime
    sent_at: datetime | None
    preview: PreviewOut | None
    variables: dict[str, str]


def _json(a: Announcement) -> dict[str, Any]:
    cases = a.chosen_cases()
    first = a.preview(cases)
    preview = None
    if first is not None:
        case, subject, body = first
        preview = {"case_id": case.pk, "to": case.person.email, "subject": subject, "body": body}
    states = dict(
        Delivery.objects.filter(announcement=a).values_list("status").annotate(n=Count("id"))
    )
    return {
        **{f: getattr(a, f) for f in ("id", "title", "details", "tag", "subject", "body")},
        **{f: getattr(a, f) for f in ("resolve", "status", "emailed", "not_emailed")},
        "theme": a.theme.slug if a.theme else None,
        "case_ids": sorted(c.pk for c in cases),
        "deliveries": {s: states.get(s, 0) for s in ("pending", "sending", "sent", "failed")},
        "created_at": a.created_at,
        "sent_at": a.sent_at,
        "preview": preview,
        "variables": FIX_VARIABLES,
    }


def _announcement(announcement_id: int) -> Announcement:
    return get_object_or_404(Announcement, pk=announcement_id)


@router.get("/announcements", response=list[AnnouncementOut], summary="Fix-shipped announcements")
def list_announcements(request: HttpRequest, status: str = "") -> list[dict[str, Any]]:
    """Newest first; `status=draft` or `status=sent` narrows the list."""
    qs = Announcement.objects.order_by("-created_at")
    if status:
        if status not in Announcement.Status.values:
            raise FieldError("status", "must be draft or sent")
        qs = qs.filter(Q(status=status))
    return [_json(a) for a in qs[:200]]


@router.post(
    "/announcements", response={201: AnnouncementOut}, summary="Draft a fix-shipped announcement"
)
def create_announcement(request: HttpRequest, payload: AnnouncementIn) -> Status[dict[str, Any]]:
    """A draft: with `theme` (a slug), every case with an answer of that theme is chosen;
    with `tag`, the cases whose answers carry it; `case_ids` adds more. Nothing is sent
    until `POST /announcements/{id}/send`."""
    require_admin(request)
    fields = payload.model_dump(exclude={"case_ids", "theme"})
    with transaction.atomic():
        a = Announcement.draft(payload.case_ids, theme=Theme.named(payload.theme), **fields)
    return Status(201, _json(a))


@router.get(
    "/announcements/{announcement_id}", response=AnnouncementOut, summary="One announcement"
)
def get_announcement(request: HttpRequest, announcement_id: int) -> dict[str, Any]:
    """With the first customer's email as it will read, and how the sent emails are doing."""
    return _json(_announcement(announcement_id))


@router.put(
    "/announcements/{announcement_id}/cases",
    response=AnnouncementOut,
    summary="Replace a draft's cases",
)
def set_cases(request: HttpRequest, announcement_id: int, payload: CasesIn) -> dict[str, Any]:
    require_admin(request)
    with transaction.atomic():
        a = _announcement(announcement_id)
        a.choose(payload.case_ids, by_tag=payload.by_tag, by_theme=payload.by_theme)
    return _json(a)


@router.post(
    "/announcements/{announcement_id}/send",
    response={202: AnnouncementOut},
    summary="Send a draft to its customers",
)
def send_announcement(request: HttpRequest, announcement_id: int) -> Status[dict[str, Any]]:
    """Queues one email per person from their case's owner and logs it on every case; 422 if
    it was already sent or has no cases. The worker delivers the emails."""
    require_admin(request)
    a = _announcement(announcement_id)
    actions.send_announcement(a, None)
    return Status(202, _json(a))
