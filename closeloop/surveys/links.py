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


class LinkMaker:
    """Makes requests' links. Each route is reversed once, so a batch of emails pays once."""

    ROUTES = ("survey-answer", "survey-page", "survey-unsubscribe", "survey-opened")

    def __init__(self) -> None:
        self.signer = _signer()
        self.unsubscribe_signer = signing.Signer(salt=_UNSUBSCRIBE_SALT)
        self.routes = {name: tuple(reverse(name, args=["~"]).split("~", 1)) for name in self.ROUTES}

    def _url(self, route: str, value: str) -> str:
        before, after = self.routes[route]
        return f"{settings.SITE_URL}{before}{value}{after}"

    def score(self, request: SurveyRequest, score: int) -> str:
        """The link behind one number of the email's 0–10 scale."""
        return self._url("survey-answer", self.signer.sign(f"{request.token}.{score}"))

    def page(self, request: SurveyRequest) -> str:
        """The hosted survey page, to answer or to add a comment."""
        return self._url("survey-page", self.signer.sign(request.token))

    def unsubscribe(self, request: SurveyRequest) -> str:
        """The unsubscribe page; also the RFC 8058 one-click POST target. It never expires."""
        return self._url("survey-unsubscribe", self.unsubscribe_signer.sign(request.token))

    def opened(self, request: SurveyRequest) -> str:
        """A 1×1 image that marks the request opened when the mail client shows pictures."""
        return self._url("survey-opened", self.signer.sign(request.token))


def score_url(request: SurveyRequest, score: int) -> str:
    """The link behind one number of the email's 0–10 scale."""
    return LinkMaker().score(request, score)


def page_url(request: SurveyRequest) -> str:
    """The hosted survey page, to answer or to add a comment."""
    return LinkMaker().page(request)


def unsubscribe_url(request: SurveyRequest) -> str:
    """The unsubscribe page; also the RFC 8058 one-click POST target."""
    return LinkMaker().unsubscribe(request)


def open_url(request: SurveyRequest) -> str:
    """A 1×1 image that marks the request opened when the mail client shows pictures."""
    return LinkMaker().opened(request)


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
