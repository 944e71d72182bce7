"""What webhooks, Slack and the API say about a case, an answer, a person: their JSON
shapes, one for every reader."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.utils import timezone

from closeloop.surveys.models import Response
from closeloop.team.models import User

from .models import Conversation, FollowUpCase


def case_url(case: FollowUpCase) -> str:
    return f"{settings.SITE_URL}/cases/{case.pk}/"


def person_json(case: FollowUpCase) -> dict[str, Any]:
    p = case.person
    return {"id": p.pk, "email": p.email, "name": p.name, "external_id": p.external_id}


def account_json(case: FollowUpCase) -> dict[str, Any] | None:
    a = case.account
    if a is None:
        return None
    return {
        "id": a.pk,
        "external_id": a.external_id,
        "name": a.name,
        "tier": a.tier,
        "arr": a.arr_cents / 100,
        "currency": a.currency,
    }


def user_json(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.display_name, "email": user.email}


def case_json(case: FollowUpCase) -> dict[str, Any]:
    """The case as webhooks carry it (documented in docs/webhooks.md)."""
    r = case.response
    return {
        "id": case.pk,
        "url": case_url(case),
        "loop": case.loop,
        "status": case.status,
        "resolution": case.resolution or None,
        "score": case.score,
        "previous_score": case.previous_score,
        "band": case.band or None,
        "high_value": case.high_value,
        "action": case.action,
        "rule": case.rule,
        "policy_version": case.policy.version,
        "priority": round(case.priority, 1),
        "urgency": case.urgency,
        "detractor_type": case.detractor_type or None,
        "due_at": _iso(case.due_at),
        "first_touch_at": _iso(case.first_touch_at),
        "escalation_level": case.escalation_level,
        "overdue": case.is_overdue,
        "owner": user_json(case.owner),
        "person": person_json(case),
        "account": account_json(case),
        "response": None
        if r is None
        else {
            "id": r.pk,
            "score": r.score,
            "comment": r.comment,
            "created_at": _iso(r.created_at),
            "themes": r.themes_json(),
            "sentiment": r.sentiment_json(),
        },
        "health": case.health,
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "closed_at": _iso(case.closed_at),
    }


def conversation_json(conversation: Conversation | None) -> dict[str, Any] | None:
    """The follow-up conversation as the case API and the conversation.completed event
    carry it (docs/conversation.md)."""
    if conversation is None:
        return None
    return {
        "url": conversation.url,
        "status": conversation.status,
        "messages": [m.as_json() for m in conversation.messages.all()],
        "summary": conversation.summary,
    }


def conversation_of(case: FollowUpCase) -> Conversation | None:
    return Conversation.objects.filter(case=case).first()


def response_json(response: Response) -> dict[str, Any]:
    return {
        "id": response.pk,
        "score": response.score,
        "category": response.category.value,
        "comment": response.comment,
        "source": response.source,
        "person": {"id": response.person_id, "email": response.person.email},
        "account_id": response.account_id,
        "created_at": _iso(response.created_at),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def event_payload(event: str, event_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(event_id), "type": event, "created_at": _iso(timezone.now()), "data": data}
