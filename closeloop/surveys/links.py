"""Signed links in survey emails: one per score, the hosted page, unsubscribe, open pixel.

Each link carries the request's token and, for a score, the number, signed
with the site's SECRET_KEY and stamped with the time it was made. A link whose
signature does not match is "damaged"; a score or page link older than the
survey's `link_days` is "expired". Unsubscribe links never expire: a person
must always be able to stop the mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .models import SurveyRequest

_SALT = "closeloop.surveys.link"
_UNSUBSCRIBE_SALT = "closeloop.surveys.unsubscribe"


class LinkError(Exception):
    """A survey link cannot be used; `expired` tells a stale link from a damaged one."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "damaged")
        self.expired = expired


@dataclass(frozen=True)
class Opened:
    """What a valid survey link names: the request, and the score clicked if any."""

    request: SurveyRequest
    score: int | None


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT)


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def score_url(request: SurveyRequest, score: int) -> str:
    """The link behind one number of the email's 0–10 scale."""
    return _absolute(reverse("survey-answer", args=[_signer().sign(f"{request.token}.{score}")]))


def page_url(request: SurveyRequest) -> str:
    """The hosted survey page, to answer or to add a comment."""
    return _absolute(reverse("survey-page", args=[_signer().sign(request.token)]))


def unsubscribe_url(request: SurveyRequest) -> str:
    """The unsubscribe page; also the RFC 8058 one-click POST target."""
    value = signing.Signer(salt=_UNSUBSCRIBE_SALT).sign(request.token)
    return _absolute(reverse("survey-unsubscribe", args=[value]))


def open_url(request: SurveyRequest) -> str:
    """A 1×1 image that marks the request opened when the mail client shows pictures."""
    return _absolute(reverse("survey-opened", args=[_signer().sign(request.token)]))


def _request(token: str) -> SurveyRequest:
    try:
        return SurveyRequest.objects.select_related("survey", "person").get(token=token)
    except SurveyRequest.DoesNotExist:
        # A valid signature over a token we no longer have: the request was deleted.
        raise LinkError(expired=True) from None


def read(value: str, *, with_score: bool) -> Opened:
    """The request (and score) a survey link names, or LinkError."""
    signer = _signer()
    try:
        unsigned = signer.unsign(value)
    except signing.BadSignature:
        raise LinkError(expired=False) from None
    token, score = unsigned, None
    if with_score:
        token, _, number = unsigned.rpartition(".")
        if not token or not number.isdigit() or not 0 <= int(number) <= 10:
            raise LinkError(expired=False)
        score = int(number)
    request = _request(token)
    try:
        signer.unsign(value, max_age=timedelta(days=request.survey.link_days))
    except signing.SignatureExpired:
        raise LinkError(expired=True) from None
    return Opened(request, score)


def read_unsubscribe(value: str) -> SurveyRequest:
    """The request an unsubscribe link names, or LinkError."""
    try:
        token = signing.Signer(salt=_UNSUBSCRIBE_SALT).unsign(value)
    except signing.BadSignature:
        raise LinkError(expired=False) from None
    return _request(token)
