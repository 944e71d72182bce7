"""API v1 for themes and sentiment: read comments without storing anything.

Themes found by the worker appear on answers (`GET /responses`) and cases
(`GET /cases`); this router adds what is not tied to a stored answer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from closeloop.core.errors import FieldError
from closeloop.loop import protocols
from closeloop.loop.configuration import active_user
from closeloop.loop.models import FollowUpCase, RoadmapItem
from closeloop.surveys.models import Response
from closeloop.team.models import Team, User
from closeloop.themes import analysis, discovery, learning, taxonomy
from closeloop.themes.model_files import ModelNotReady
from closeloop.themes.models import Theme, ThemeCandidate, ThemeDiscovery, ThemeTraining

from .access import require_admin, require_write
from .cases import In
from .schemas import SentenceOut, ThemeTagOut

router = Router(tags=["themes"])
WARMING_RETRY_SECONDS = 5

MAX_TEXTS = 1000
Text = Annotated[str, Field(max_length=100_000)]


class ClassifyIn(In):
    texts: list[Text] = Field(..., min_length=1, max_length=MAX_TEXTS)


class FoundThemeOut(Schema):
    slug: str
    name: str
    confidence: float


class TextSentimentOut(Schema):
    sentiment: str = Field(description="negative, neutral or positive")
    score: float = Field(description="from -1 (most negative) to +1 (most positive)")
    sentences: list[SentenceOut]


class ClassifiedOut(Schema):
    themes: list[FoundThemeOut] = Field(description="most likely first; empty = unclassified")
    unclassified: bool
    sentiment: TextSentimentOut


class ClassifyOut(Schema):
    results: list[ClassifiedOut] = Field(description="one per text, in order")
    themes_version: str
    sentiment_version: str


@router.post("/themes/classify", response=ClassifyOut, summary="Themes and sentiment of texts")
def classify(request: HttpRequest, payload: ClassifyIn) -> dict[str, Any]:
    """Read up to 1,000 texts as the worker reads comments, and store nothing. Retired
    themes are not given; texts longer than 1,000 characters are read up to there.

    503 with `Retry-After` while this web process is still loading its models (for a
    few seconds after it starts) or the theme model is still being built."""
    if analysis.warming():
        raise ModelNotReady("theme and sentiment models", retry_after=WARMING_RETRY_SECONDS)
    found = analysis.analyse(payload.texts)
    results = []
    for result in found.results:
        themes = found.named(result.themes)
        feeling = result.sentiment
        results.append(
            {
                "themes": themes,
                "unclassified": not themes,
                "sentiment": {
                    **feeling.overall.as_dict(),
                    "sentences": feeling.sentences_as_dicts(),
                },
            }
        )
    return {
        "results": results,
        "themes_version": found.themes_version,
        "sentiment_version": found.sentiment_version,
    }


# --- the taxonomy, corrections and retraining ---------------------------------------------


class ProtocolAnswer(Schema):
    title: str = Field(..., max_length=100)
    body: str = Field(..., max_length=2000, description="may use the outreach {variables}")


class ThemeOut(Schema):
    slug: str
    name: str
    description: str
    probes: list[str]
    owner: str | None = Field(description="the owner's email")
    team: str | None = Field(description="the team that owns its cases (protocol sheet)")
    approved_answers: list[ProtocolAnswer] = Field(
        description="pre-approved answers to insert in replies (protocol sheet)"
    )
    next_steps: list[str]
    loop_in: str = Field(description="the department to loop in (protocol sheet)")
    retired_at: datetime | None
    merged_into: str | None = Field(description="the slug of the theme it became")
    answers: int = Field(description="answers tagged with it")

    @staticmethod
    def resolve_owner(obj: Theme) -> str | None:
        return obj.owner.email if obj.owner else None

    @staticmethod
    def resolve_team(obj: Theme) -> str | None:
        return obj.team.name if obj.team else None

    @staticmethod
    def resolve_merged_into(obj: Theme) -> str | None:
        return obj.merged_into.slug if obj.merged_into else None


@router.get("/themes", response=list[ThemeOut], summary="The themes, retired ones included")
def list_themes(request: HttpRequest | None) -> QuerySet[Theme]:
    return (
        Theme.objects.select_related("owner", "merged_into", "team")
        .annotate(answers=Count("tags"))
        .order_by("retired_at", "name")
    )


Slug = Annotated[str, Field(min_length=1, max_length=60)]


class CorrectionIn(In):
    add: list[Slug] = Field(default_factory=list, max_length=50, description="theme slugs")
    remove: list[Slug] = Field(default_factory=list, max_length=50, description="theme slugs")


class CorrectedOut(Schema):
    themes: list[ThemeTagOut]


def _correct(request: HttpRequest, response: Response, payload: CorrectionIn) -> dict[str, Any]:
    key = require_write(request)
    if not payload.add and not payload.remove:
        raise FieldError("add", "name a theme to add or to remove")
    add = learning.resolve_themes(payload.add, "add", for_adding=True)
    remove = learning.resolve_themes(payload.remove, "remove", for_adding=False)
    learning.correct(response, add, remove, via=f"API key {key.name}")
    fresh = Response.objects.prefetch_related("theme_tags__theme").get(pk=response.pk)
    return {"themes": fresh.themes_json()}


@router.post(
    "/responses/{response_id}/themes", response=CorrectedOut, summary="Correct an answer's themes"
)
def correct_response_themes(
    request: HttpRequest, response_id: int, payload: CorrectionIn
) -> dict[str, Any]:
    """Add and remove themes by slug. The answer's comment with its corrected themes becomes
    a training example; the next retraining learns from it."""
    return _correct(request, get_object_or_404(Response, pk=response_id), payload)


@router.post("/cases/{case_id}/themes", response=CorrectedOut, summary="Correct a case's themes")
def correct_case_themes(
    request: HttpRequest, case_id: int, payload: CorrectionIn
) -> dict[str, Any]:
    """A case's themes are those of the answer that opened it; this corrects them."""
    case = get_object_or_404(FollowUpCase.objects.select_related("response"), pk=case_id)
    if case.response is None:
        raise FieldError("case_id", "a health case has no answer, so no themes")
    return _correct(request, case.response, payload)


class TrainingOut(Schema):
    id: int
    kind: str
    status: str = Field(description="queued, running, done, unchanged or failed")
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    version: str
    examples: int
    corrections: int
    error: str


@router.get("/themes/trainings", response=list[TrainingOut], summary="Retrainings, newest first")
def list_trainings(request: HttpRequest) -> QuerySet[ThemeTraining]:
    return ThemeTraining.objects.defer("model")[:100]


@router.post("/themes/retrain", response={202: TrainingOut}, summary="Retrain the theme model")
def retrain(request: HttpRequest) -> Status[ThemeTraining]:
    """Queue a retraining on the shipped examples and every correction; the worker runs it
    and, if it learned something new, every worker then uses the new model."""
    require_admin(request)
    return Status(202, learning.request_training())


# --- discovery ----------------------------------------------------------------------------


class DiscoveryIn(In):
    since: date
    until: date


class CandidateOut(Schema):
    id: int
    name: str
    keywords: list[str]
    size: int
    share: float = Field(description="of the unplaced comments the run read")
    examples: list[str] = Field(description="its most typical comments")
    response_ids: list[int]
    status: str = Field(description="open, accepted or dismissed")
    theme: str | None = Field(description="the theme it became, when accepted")

    @staticmethod
    def resolve_theme(obj: ThemeCandidate) -> str | None:
        return obj.theme.slug if obj.theme else None


class DiscoveryOut(Schema):
    id: int
    since: date
    until: date
    status: str = Field(description="queued, running, done or failed")
    requested_at: datetime
    finished_at: datetime | None
    comments: int = Field(description="unplaced comments read")
    error: str
    candidates: list[CandidateOut]

    @staticmethod
    def resolve_candidates(obj: ThemeDiscovery) -> list[ThemeCandidate]:
        return list(obj.candidates.all())


class AcceptIn(In):
    name: str = Field(..., min_length=1, max_length=100)
    slug: str = Field("", max_length=60)


@router.post("/themes/discoveries", response={202: DiscoveryOut}, summary="Look for new themes")
def discover(request: HttpRequest, payload: DiscoveryIn) -> Status[ThemeDiscovery]:
    """Queue a search among the period's comments the model could not place; the worker
    runs it once those comments have been read."""
    require_admin(request)
    return Status(202, discovery.request_discovery(payload.since, payload.until))


@router.get("/themes/discoveries", response=list[DiscoveryOut], summary="Searches for themes")
def list_discoveries(request: HttpRequest) -> QuerySet[ThemeDiscovery]:
    return ThemeDiscovery.objects.prefetch_related("candidates__theme")[:20]


def _candidate(candidate_id: int) -> ThemeCandidate:
    return get_object_or_404(ThemeCandidate, pk=candidate_id)


@router.post(
    "/themes/candidates/{candidate_id}/accept",
    response={201: ThemeOut},
    summary="Accept a candidate as a theme",
)
def accept_candidate(request: HttpRequest, candidate_id: int, payload: AcceptIn) -> Status[Theme]:
    """It becomes a theme; its comments are tagged with it and teach the model; a
    retraining is queued."""
    require_admin(request)
    theme = discovery.accept(_candidate(candidate_id), payload.name, None, payload.slug)
    return Status(201, _theme_out(theme))


@router.post(
    "/themes/candidates/{candidate_id}/dismiss", response=CandidateOut, summary="Dismiss one"
)
def dismiss_candidate(request: HttpRequest, candidate_id: int) -> ThemeCandidate:
    require_admin(request)
    return discovery.dismiss(_candidate(candidate_id), None)


# --- changing the taxonomy (after the fixed /themes/... paths: {slug} would take them) --


class ThemeEditIn(In):
    name: str = Field(..., min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    probes: list[Annotated[str, Field(max_length=300)]] = Field(default_factory=list, max_length=10)
    owner: str | None = Field(None, max_length=254, description="the owner's email")


class ThemeIn(ThemeEditIn):
    slug: str = Field("", max_length=60, description="from the name when empty; never changes")


class MergeIn(In):
    into: Slug


class SplitIn(In):
    names: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        ..., min_length=2, max_length=10
    )


def _owner(email: str | None) -> User | None:
    return active_user(email, "owner") if email else None


def _named(slug: str, field: str = "theme") -> Theme:
    theme = Theme.objects.filter(slug=slug).first()
    if theme is None:
        raise FieldError(field, f"no theme {slug!r}")
    return theme


def _theme_out(theme: Theme) -> Theme:
    return list_themes(None).get(pk=theme.pk)


@router.post("/themes", response={201: ThemeOut}, summary="Add a theme")
def add_theme(request: HttpRequest, payload: ThemeIn) -> Status[Theme]:
    require_admin(request)
    theme = taxonomy.add_theme(
        payload.name,
        slug=payload.slug,
        description=payload.description,
        probes=payload.probes,
        owner=_owner(payload.owner),
    )
    return Status(201, _theme_out(theme))


@router.put("/themes/{slug}", response=ThemeOut, summary="Rename or describe a theme")
def edit_theme(request: HttpRequest, slug: str, payload: ThemeEditIn) -> Theme:
    require_admin(request)
    theme = get_object_or_404(Theme, slug=slug)
    taxonomy.edit_theme(
        theme,
        name=payload.name,
        description=payload.description,
        probes=payload.probes,
        owner=_owner(payload.owner),
    )
    return _theme_out(theme)


class ProtocolIn(In):
    team: str | None = Field(None, max_length=100, description="a team's name; null for none")
    approved_answers: list[ProtocolAnswer] = Field(default_factory=list, max_length=10)
    next_steps: list[Annotated[str, Field(max_length=300)]] = Field(
        default_factory=list, max_length=15
    )
    loop_in: str = Field("", max_length=200)


@router.put("/themes/{slug}/protocol", response=ThemeOut, summary="Set a theme's protocol sheet")
def set_protocol(request: HttpRequest, slug: str, payload: ProtocolIn) -> Theme:
    """The team that owns its cases, pre-approved answers (linted; they may use the
    outreach {variables}), the next steps and the department to loop in. The case page
    and `GET /cases/{id}` show the sheets of a case's themes."""
    require_admin(request)
    theme = get_object_or_404(Theme, slug=slug)
    team = None
    if payload.team:
        team = Team.objects.filter(name=payload.team).first()
        if team is None:
            raise FieldError("team", f"no team {payload.team!r}")
    protocols.set_sheet(
        theme,
        team=team,
        approved_answers=[a.model_dump() for a in payload.approved_answers],
        next_steps=payload.next_steps,
        loop_in=payload.loop_in,
    )
    return _theme_out(theme)


@router.post("/themes/{slug}/merge", response=ThemeOut, summary="Merge a theme into another")
def merge_theme(request: HttpRequest, slug: str, payload: MergeIn) -> Theme:
    """Its tags move to `into`; it stays, retired, pointing at `into`."""
    require_admin(request)
    source = get_object_or_404(Theme, slug=slug)
    taxonomy.merge(source, _named(payload.into, "into"))
    return _theme_out(source)


@router.post(
    "/themes/{slug}/split", response={201: list[ThemeOut]}, summary="Split a theme into new ones"
)
def split_theme(request: HttpRequest, slug: str, payload: SplitIn) -> Status[list[Theme]]:
    """New themes take its description and probes; it is retired with its tags kept.
    Correct its answers to the new themes (or use the themes page), then retrain."""
    require_admin(request)
    created = taxonomy.split(get_object_or_404(Theme, slug=slug), payload.names)
    return Status(201, [_theme_out(t) for t in created])


@router.post("/themes/{slug}/retire", response=ThemeOut, summary="Retire a theme")
def retire_theme(request: HttpRequest, slug: str) -> Theme:
    require_admin(request)
    return _theme_out(taxonomy.retire(get_object_or_404(Theme, slug=slug)))


@router.post("/themes/{slug}/restore", response=ThemeOut, summary="Restore a retired theme")
def restore_theme(request: HttpRequest, slug: str) -> Theme:
    require_admin(request)
    return _theme_out(taxonomy.restore(get_object_or_404(Theme, slug=slug)))


# --- roadmap items: what a theme's owner is doing about it -----------------------------------


class RoadmapIn(In):
    title: str = Field(..., max_length=200, description="what will change, in a line")
    details: str = Field("", max_length=2000, description="a few words more, for customers")
    status: str = Field("planned", description="planned or in_progress")
    target_date: str | None = Field(None, max_length=10, description="YYYY-MM-DD")


class RoadmapEditIn(In):
    title: str | None = Field(None, max_length=200)
    details: str | None = Field(None, max_length=2000)
    status: str | None = Field(
        None, description="planned, in_progress, shipped (opens the announcement) or dropped"
    )
    target_date: str | None = Field(None, max_length=10, description="YYYY-MM-DD; empty clears")


class RoadmapOut(Schema):
    id: int
    theme: str
    title: str
    details: str
    status: str
    target_date: date | None
    shipped_at: datetime | None
    announcement_id: int | None = Field(description="the fix-shipped draft opened when shipped")
    overdue: bool


@router.get("/themes/{slug}/roadmap", response=list[RoadmapOut], summary="A theme's roadmap")
def theme_roadmap(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    theme = get_object_or_404(Theme, slug=slug)
    return [i.as_json() for i in theme.roadmap_items.select_related("theme")]


@router.get("/roadmap", response=list[RoadmapOut], summary="Every theme's roadmap items")
def roadmap(request: HttpRequest, status: str = "") -> list[dict[str, Any]]:
    items = RoadmapItem.objects.select_related("theme")
    if status:
        if status not in RoadmapItem.Status.values:
            choices = ", ".join(RoadmapItem.Status.values)
            raise FieldError("status", f"must be one of {choices}", where="query")
        items = items.filter(status=status)
    return [i.as_json() for i in items]


@router.post(
    "/themes/{slug}/roadmap", response={201: RoadmapOut}, summary="Add a roadmap item to a theme"
)
def add_roadmap_item(request: HttpRequest, slug: str, payload: RoadmapIn) -> Status[Any]:
    require_write(request)
    theme = get_object_or_404(Theme, slug=slug)
    item = RoadmapItem.add(
        theme,
        None,
        payload.title,
        status=payload.status,
        target_date=payload.target_date,
        details=payload.details,
    )
    return Status(201, item.as_json())


@router.patch("/roadmap/{item_id}", response=RoadmapOut, summary="Change or ship a roadmap item")
def change_roadmap_item(request: HttpRequest, item_id: int, payload: RoadmapEditIn) -> Any:
    """Moving it to `shipped` opens the fix-shipped announcement for the theme's cases,
    as a draft with the item's words (`announcement_id`): review it, then send it."""
    require_write(request)
    with transaction.atomic():
        item = get_object_or_404(RoadmapItem.objects.select_for_update(), pk=item_id)
        item.change(None, **payload.model_dump(exclude_unset=True))
    return item.as_json()
