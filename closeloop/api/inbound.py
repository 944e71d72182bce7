"""POST /inbound/email: any mail provider can forward customers' replies here as raw MIME.

The body is the message exactly as received (RFC 5322). The sender signs it
like our outgoing webhooks: `X-Closeloop-Timestamp` (Unix seconds) and
`X-Closeloop-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with
INBOUND_EMAIL_SECRET. Old timestamps are refused, so a captured request cannot
be replayed later; the same message sent twice is stored once.
"""

from __future__ import annotations

import hmac
import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from closeloop.delivery.transports import sign
from closeloop.loop.inbound import receive

MAX_CLOCK_SKEW_SECONDS = 300


def refuse(status: int, where: str, message: str) -> JsonResponse:
    """A refusal in the API's error shape, for the views outside it (signed webhooks)."""
    return JsonResponse({"detail": [{"loc": where.split("."), "msg": message}]}, status=status)


@csrf_exempt
@require_POST
def inbound_email(request: HttpRequest) -> JsonResponse:
    """Verify the signature, then store the message on its case or in quarantine (202)."""
    secret = settings.INBOUND_EMAIL_SECRET
    if not secret:
        return refuse(503, "server", "inbound email is off: set INBOUND_EMAIL_SECRET")
    limit = settings.INBOUND_EMAIL_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return refuse(413, "body", f"larger than {limit} bytes")
    # Unsigned or stale requests are refused before a byte of the body is read.
    stamp = request.headers.get("X-Closeloop-Timestamp", "")
    signature = request.headers.get("X-Closeloop-Signature", "")
    if not stamp or not signature:
        missing = "X-Closeloop-Timestamp" if not stamp else "X-Closeloop-Signature"
        return refuse(401, f"header.{missing}", "missing")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_CLOCK_SKEW_SECONDS:
        return refuse(
            401, "header.X-Closeloop-Timestamp", "not within 5 minutes of now (replayed or stale)"
        )
    if not signature.startswith("sha256=") or len(signature) != len("sha256=") + 64:
        return refuse(401, "header.X-Closeloop-Signature", "must be sha256=<64 hex digits>")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return refuse(413, "body", f"larger than {limit} bytes")
    expected = "sha256=" + sign(secret, int(stamp), raw)
    if not hmac.compare_digest(expected, signature):
        return refuse(401, "header.X-Closeloop-Signature", "does not match the body")
    if not raw.strip():
        return refuse(400, "body", "empty: send the raw MIME message as the body")
    message, is_new = receive(raw, "http")
    return JsonResponse(
        {
            "id": message.pk,
            "status": message.status,
            "case": message.case_id,
            "reason": message.reason,
            "duplicate": not is_new,
        },
        status=202,
    )
