"""People and answers in Delighted's JSON shapes: for the /v1/ API and Delighted-format webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .models import Person, Response


def unix(value: datetime | None) -> int | None:
    """Delighted's times: whole seconds since 1970, UTC."""
    return int(value.timestamp()) if value is not None else None


def _latest(*times: datetime | None) -> datetime | None:
    found = [t for t in times if t is not None]
    return max(found) if found else None


def person_json(person: Person) -> dict[str, Any]:
    """A person as Delighted showed one (survey dates when the query annotated them)."""
    return {
        "id": str(person.pk),
        "name": person.name or None,
        "email": person.email,
        "created_at": unix(person.created_at),
        "phone_number": person.phone or None,
        "last_sent_at": unix(
            _latest(getattr(person, "last_sent_at", None), person.last_sent_elsewhere_at)
        ),
        "last_responded_at": unix(getattr(person, "last_responded_at", None)),
        "next_survey_scheduled_at": unix(getattr(person, "next_survey_scheduled_at", None)),
    }


def response_json(response: Response, expand: set[str], site_url: str) -> dict[str, Any]:
    """An answer as a Delighted survey response; `expand` may hold "person"."""
    person: Any = str(response.person_id)
    if "person" in expand:
        person = person_json(response.person)
    notes = []
    if response.notes:
        notes = [
            {
                "id": str(response.pk),
                "text": response.notes,
                "user_email": None,
                "created_at": unix(response.updated_at),
            }
        ]
    return {
        "id": str(response.pk),
        "person": person,
        "survey_type": "nps",
        "score": response.score,
        "comment": response.comment or None,
        "permalink": f"{site_url}/responses/?person={response.person_id}",
        "created_at": unix(response.created_at),
        "updated_at": unix(response.updated_at),
        "person_properties": response.properties,
        "notes": notes,
        "tags": list(response.tags),
        "additional_answers": [],
    }
