"""Webhooks from other systems (docs/integrations.md). Each sender signs its requests
its own way, so these are plain views rather than API-key routes:

- `POST /api/v1/integrations/stripe`: Stripe's `Stripe-Signature`, checked with the
  official library against STRIPE_WEBHOOK_SECRET.
- `POST /api/v1/segment` (and `/api/v1/segment/v1/<call>`, where Segment's libraries
  post when pointed at `<host>/api/v1/segment`): Segment's HTTP tracking API, with the
  write key as the Basic-auth user name (SEGMENT_WRITE_KEY) or the Webhooks
  destination's `X-Signature` (hex HMAC-SHA1 of the body with SEGMENT_SHARED_SECRET).
  Over 500 KB is a 400, as Segment answers.
- `POST /api/v1/integrations/zendesk`: `X-Zendesk-Webhook-Signature`, base64 of an
  HMAC-SHA256 of the `X-Zendesk-Webhook-Signature-Timestamp` and the body, with
  ZENDESK_WEBHOOK_SECRET.
- `POST /api/v1/integrations/intercom`: `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the
  body>` with the app's client secret, INTERCOM_CLIENT_SECRET.

Answers: 200 with what became of the event (a replayed event id: 200, nothing new);
401 for a missing or bad signature (nothing stored); 400 for a body that is not an
event; 413 over INTEGRATION_MAX_BYTES; 503 while the secret is not set.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import io
import json
import zlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from closeloop.core.errors import FieldError
from closeloop.core.schemas import NUL_REFUSAL, has_nul
from closeloop.integrations import segment, stripe_events, tickets
from closeloop.integrations.models import Received

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
    return delivered(received, note=received.event.note)


def delivered(received: Received, **more: object) -> JsonResponse:
    """What became of one webhook delivery (a replay: `new` false, nothing changed)."""
    event = received.event
    return JsonResponse(
        {
            "id": event.event_id,
            "type": event.type,
            "status": event.status,
            "new": received.new,
            "account": event.account_id,
            **more,
        }
    )


def _segment_caller(request: HttpRequest, raw: bytes) -> JsonResponse | None:
    """None when the request carries this install's write key or shared-secret
    signature; else the refusal."""
    key, secret = settings.SEGMENT_WRITE_KEY, settings.SEGMENT_SHARED_SECRET
    signature = request.headers.get("X-Signature", "")
    if signature and secret:
        expected = hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()
        if hmac.compare_digest(expected, signature.strip().lower()):
            return None
        return refuse(401, "header.X-Signature", "does not match the body and shared secret")
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Basic "):
        return refuse(401, "header.Authorization", "send the write key as Basic-auth user")
    try:
        user = base64.b64decode(auth[6:].strip(), validate=True).decode().split(":", 1)[0]
    except (binascii.Error, UnicodeDecodeError):
        return refuse(401, "header.Authorization", "not Basic auth")
    if key and hmac.compare_digest(user.encode(), key.encode()):
        return None
    return refuse(401, "header.Authorization", "not this install's Segment write key")


@csrf_exempt
@require_POST
def segment_api(request: HttpRequest, call: str | None = None) -> JsonResponse:
    if not settings.SEGMENT_WRITE_KEY and not settings.SEGMENT_SHARED_SECRET:
        return refuse(503, "server", "the Segment integration is off: set SEGMENT_WRITE_KEY")
    if call is not None and call not in segment.TYPES | {"batch"}:
        return refuse(404, "path", f"no Segment call {call!r}")
    limit = segment.MAX_BATCH_BYTES
    raw = request.read(limit + 1)
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        try:
            raw = gzip.GzipFile(fileobj=io.BytesIO(raw)).read(limit + 1)
        except (OSError, EOFError, zlib.error):
            return refuse(400, "body", "not gzip, though Content-Encoding says so")
    if len(raw) > limit:
        return refuse(400, "body", "larger than 500 KB, Segment's limit for a batch")
    refused = _segment_caller(request, raw)
    if refused is not None:
        return refused
    try:
        body = json.loads(raw)
        if b"\\u0000" in raw and has_nul(body):
            raise FieldError("body", NUL_REFUSAL)
        result = segment.ingest(segment.messages_of(body, call))
    except FieldError as exc:  # a ValueError too: named first
        return refuse(400, f"body.{exc.field}", exc.reason)
    except ValueError:
        return refuse(400, "body", "not JSON")
    return JsonResponse(result.as_dict())


def _ticket_delivery(
    request: HttpRequest,
    source: str,
    secret: str,
    verify: Callable[[bytes], JsonResponse | None],
    parse: Callable[[dict[str, Any]], tuple[str, str, tickets.TicketState]],
) -> JsonResponse:
    """Read, verify (`verify(raw)` → a refusal or None), parse and record one desk's
    webhook delivery."""
    name = source.capitalize()
    if not secret:
        return refuse(503, "server", f"the {name} integration is off: set its secret")
    limit = settings.INTEGRATION_MAX_BYTES
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return refuse(413, "body", f"larger than {limit} bytes")
    refused = verify(raw)
    if refused is not None:
        return refused
    try:
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise FieldError("body", "a JSON object")
        if b"\\u0000" in raw and has_nul(body):
            raise FieldError("body", NUL_REFUSAL)
        event_id, kind, state = parse(body)
        received = tickets.receive(source, event_id, kind, body, state)
    except FieldError as exc:  # a ValueError too: named first
        return refuse(400, f"body.{exc.field}", exc.reason)
    except ValueError:
        return refuse(400, "body", "not JSON")
    return delivered(received, ticket=received.event.object_id)


@csrf_exempt
@require_POST
def zendesk_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.ZENDESK_WEBHOOK_SECRET

    def verify(raw: bytes) -> JsonResponse | None:
        signature = request.headers.get("X-Zendesk-Webhook-Signature", "")
        stamp = request.headers.get("X-Zendesk-Webhook-Signature-Timestamp", "")
        if not signature or not stamp:
            missing = "Signature" if not signature else "Signature-Timestamp"
            return refuse(401, f"header.X-Zendesk-Webhook-{missing}", "missing")
        mac = hmac.new(secret.encode(), stamp.encode() + raw, hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(mac).decode(), signature.strip()):
            return refuse(401, "header.X-Zendesk-Webhook-Signature", "does not match the body")
        return None

    return _ticket_delivery(request, "zendesk", secret, verify, tickets.zendesk_state)


@csrf_exempt
@require_POST
def intercom_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.INTERCOM_CLIENT_SECRET

    def verify(raw: bytes) -> JsonResponse | None:
        signature = request.headers.get("X-Hub-Signature", "")
        if not signature:
            return refuse(401, "header.X-Hub-Signature", "missing")
        expected = "sha1=" + hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()
        if not hmac.compare_digest(expected, signature.strip().lower()):
            return refuse(401, "header.X-Hub-Signature", "does not match the body")
        return None

    return _ticket_delivery(request, "intercom", secret, verify, tickets.intercom_state)
