"""Webhooks from other systems (docs/integrations.md). Each sender signs its requests
its own way, so these are plain views rather than API-key routes:

- `POST /api/v1/integrations/stripe`: Stripe's `Stripe-Signature`, checked with the
  official library against STRIPE_WEBHOOK_SECRET.

Answers: 200 with what became of the event (a replayed event id: 200, nothing new);
401 for a missing or bad signature (nothing stored); 400 for a body that is not an
event; 413 over INTEGRATION_MAX_BYTES; 503 while the secret is not set.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from closeloop.core.errors import FieldError
from closeloop.integrations import stripe_events

from .inbound import refuse


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return refuse(503, "server", "the Stripe integration is off: set STRIPE_WEBHOOK_SECRET")
    limit = settings.INTEGRATION_MAX_BYTES
    signature = request.headers.get("Stripe-Signature", "")
    if not signature:
        return refuse(401, "header.Stripe-Signature", "missing")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return refuse(413, "body", f"larger than {limit} bytes")
    try:
        received = stripe_events.receive(raw, signature, secret)
    except stripe_events.BadSignature:
        return refuse(401, "header.Stripe-Signature", "does not match this endpoint's secret")
    except FieldError as exc:  # a ValueError too: named first
        return refuse(400, f"body.{exc.field}", exc.reason)
    except ValueError:  # UnicodeDecodeError and json's errors included
        return refuse(400, "body", "not a JSON Stripe event")
    event = received.event
    return JsonResponse(
        {
            "id": event.event_id,
            "type": event.type,
            "status": event.status,
            "new": received.new,
            "account": event.account_id,
            "note": event.note,
        }
    )
