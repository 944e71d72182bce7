"""Erasing a person: their personal data goes from everywhere it was copied to.

A person asks to be forgotten (the API's `DELETE /api/v1/people/{id}`, Delighted's
`DELETE /v1/people/…`, or an admin on the case page). In one transaction this removes:

- the person, their answers (with their edits and theme tags), survey requests and
  their links' hits, and their follow-up cases with everything on them (timeline,
  tasks, notifications);
- every delivery to their address or about their answers and cases (the outreach,
  the owner's alerts quoting their comment, Slack and webhook bodies) with its
  attempts;
- inbound mail from their address or on their cases, raw bytes included;
- theme examples written from their comments, and their comments among the
  examples of theme discoveries;
- the answers to API writes (Idempotency-Key records) that name them.

What is kept, and why: a SHA-256 hash of the lower-cased address (`Suppression`),
so an import or API call that brings the address back never surveys it again; the
hash cannot be read back into the address, only matched against one already known.
Aggregates already sent elsewhere (a monthly report's figures) are not recalled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from closeloop.access.models import IdempotencyRecord
from closeloop.delivery.models import Delivery
from closeloop.surveys.models import Person, Response, Suppression
from closeloop.themes.models import ThemeCandidate, ThemeExample

from .models import FollowUpCase, InboundMessage


@dataclass
class Erased:
    """How many rows of each kind went, for the caller to log or show."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str, n: int) -> None:
        if n:
            self.counts[what] = self.counts.get(what, 0) + n


def erase(person: Person) -> Erased:
    """Remove the person and every copy of their personal data (see above)."""
    erased = Erased()
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person.pk)
        address = (person.email or "").lower()
        names = {v.lower() for v in (person.email, person.external_id, person.phone) if v}
        responses = list(Response.objects.filter(person=person).values_list("pk", flat=True))
        cases = list(FollowUpCase.objects.filter(person=person).values_list("pk", flat=True))
        mine = Q(case_id__in=cases) | Q(survey_request__person=person)
        if address:
            mine |= Q(to__iexact=address)
        erased.add(
            "deliveries", Delivery.objects.filter(mine).delete()[1].get("delivery.Delivery", 0)
        )
        inbound = Q(case_id__in=cases)
        if address:
            inbound |= Q(from_address__iexact=address)
        erased.add("inbound messages", InboundMessage.objects.filter(inbound).delete()[0])
        erased.add(
            "theme examples", ThemeExample.objects.filter(response_id__in=responses).delete()[0]
        )
        erased.add("discovery examples", _forget_in_candidates(set(responses)))
        erased.add("API replies", _forget_replies(IdempotencyRecord, names))
        erased.add(
            "cases",
            FollowUpCase.objects.filter(pk__in=cases).delete()[1].get("loop.FollowUpCase", 0),
        )
        erased.add("answers", len(responses))
        person.delete()
        erased.add("people", 1)
        if address:
            Suppression.add(address, "erased at the person's request")
    return erased


def _forget_in_candidates(responses: set[int]) -> int:
    """Take the person's comments out of theme discoveries' examples and members."""
    if not responses:
        return 0
    texts = set(
        Response.objects.filter(pk__in=responses)
        .exclude(comment="")
        .values_list("comment", flat=True)
    )
    changed = 0
    for candidate in ThemeCandidate.objects.all().iterator():
        members = [r for r in candidate.response_ids if r not in responses]
        examples = [t for t in candidate.examples if t not in texts]
        if members != candidate.response_ids or examples != candidate.examples:
            candidate.response_ids, candidate.examples = members, examples
            candidate.save(update_fields=["response_ids", "examples"])
            changed += 1
    return changed


def _forget_replies(model: type, names: set[str]) -> int:
    """Delete stored API replies that mention the person's address or ids."""
    if not names:
        return 0
    doomed = [
        pk
        for pk, body in model.objects.values_list("pk", "body").iterator()  # type: ignore[attr-defined]
        if any(n in json.dumps(body).lower() for n in names)
    ]
    return model.objects.filter(pk__in=doomed).delete()[0] if doomed else 0  # type: ignore[attr-defined]
