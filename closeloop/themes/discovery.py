"""Discovery: themes nobody named yet, found among the comments the model left unclassified.

A run reads a period's comments the model could not place, that are not positive (the
worker read them and found no theme, or only a weak one; praise is left out, it is not
a reason to be unhappy), embeds
them with the theme classifier's model and groups them by meaning (average-linkage
clustering on cosine distance, so the number of groups is not fixed in advance). A
group large enough becomes a candidate: a suggested name from the words that set it
apart, and its most typical comments. An admin accepts a candidate (it becomes a theme,
its comments are tagged and become examples, and a retraining is queued) or dismisses it.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from closeloop.core import claims
from closeloop.core.errors import FieldError
from closeloop.core.periods import within
from closeloop.core.reading import fail_cut_off, fail_run
from closeloop.surveys.models import Response
from closeloop.team.models import User

from . import classifier, learning, taxonomy
from .models import Theme, ThemeCandidate, ThemeDiscovery, ThemeExample, ThemeTag

log = logging.getLogger("closeloop.themes")

UNSURE = 0.6  # a comment whose best theme is below this confidence is read by discovery
MIN_COMMENTS = 10  # fewer unclassified comments than this: nothing to group
MAX_COMMENTS = 3000  # the newest ones of a longer period
MIN_GROUP = 5  # and at least MIN_SHARE of the comments read
MIN_SHARE = 0.02
DISTANCE = 0.6  # cosine distance between group averages beyond which groups stay apart
EXAMPLES = 5
MAX_TAGGED_ON_ACCEPT = 500
WAIT_FOR_TAGGING = timedelta(minutes=30)

STOP_WORDS = set(
    """a about after again all also am an and any are as at be because been before being
    but by can can't cannot could did do does doesn't don't even every for from get gets
    got had has have having he her here hers him his how i i'm if in into is isn't it it's
    its just keep keeps let me more most much my need needs no nor not now of off on once
    one only or other our out over own please really same she should so some still such
    than that the their them then there these they this those through to too under until
    up us very was we we're were what when where which while who why will with without
    would you your yours yet since every ever many lot lots always never again
    honestly frank frankly hmm overall ok okay though anyway guess""".split()
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*[a-z0-9]|[a-z0-9]")


@dataclass(frozen=True)
class Group:
    name: str
    keywords: list[str]
    members: list[int]  # indexes into the texts, most typical first
    cohesion: float  # mean cosine similarity to the group's centre


def unclassified(since: date, until: date) -> QuerySet[Response]:
    """Answers of the period the model could not place, not positive, newest first: the
    worker read them and gave no theme, or none with a confidence of UNSURE or more, and
    no person has tagged them."""
    by_person = ThemeTag.objects.filter(response=OuterRef("pk"), source=ThemeTag.Source.PERSON)
    return (
        Response.objects.filter(within(since, until), themes_status="done")
        .exclude(comment="")
        .exclude(sentiment="positive")
        .filter(~Exists(by_person))
        .alias(best=Max("theme_tags__confidence"))
        .filter(Q(best__isnull=True) | Q(best__lt=UNSURE))
        .order_by("-created_at", "-id")
    )


def _words(text: str) -> list[str]:
    """The words that are not stop words, and the pairs of them that stand side by side
    in the text ("right but aren't" gives no "right aren't": a keyword must read as the
    comments write it)."""
    every = _WORD.findall(text.lower())
    kept = [t not in STOP_WORDS and len(t) > 1 for t in every]
    tokens = [t for t, keep in zip(every, kept, strict=True) if keep]
    pairs = [
        f"{a} {b}"
        for (a, keep_a), (b, keep_b) in pairwise(zip(every, kept, strict=True))
        if keep_a and keep_b
    ]
    return tokens + pairs


def _keywords(groups: list[list[int]], texts: Sequence[str], top: int = 4) -> list[list[str]]:
    """The words and word pairs that set each group apart (class-based TF-IDF): frequent in
    the group, rare in the others."""
    counts = [Counter(w for i in members for w in set(_words(texts[i]))) for members in groups]
    spread = Counter(w for c in counts for w in c)
    result = []
    for members, c in zip(groups, counts, strict=True):
        scored = sorted(
            (
                (n / len(members)) * math.log(1 + len(groups) / spread[w]),
                w,
            )
            for w, n in c.items()
            if n >= 2
        )
        chosen: list[str] = []
        for _, word in reversed(scored):
            if any(word in other or other in word for other in chosen):
                continue
            chosen.append(word)
            if len(chosen) == top:
                break
        result.append(chosen)
    return result


def group(texts: Sequence[str]) -> list[Group]:
    """Groups of comments alike in meaning, largest first; small groups are left out."""
    import numpy as np
    from sklearn.cluster import AgglomerativeClustering

    if len(texts) < MIN_COMMENTS:
        return []
    vectors = np.asarray(classifier.embed([classifier.clean(t) for t in texts]))
    labels = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=DISTANCE
    ).fit_predict(vectors)
    smallest = max(MIN_GROUP, math.ceil(MIN_SHARE * len(texts)))
    chosen: list[list[int]] = []
    cohesion: list[float] = []
    for label in sorted(set(labels.tolist())):
        members = [i for i, x in enumerate(labels) if x == label]
        if len(members) < smallest:
            continue
        centre = vectors[members].mean(axis=0)
        centre /= np.linalg.norm(centre) or 1.0
        similarity = vectors[members] @ centre
        order = [members[k] for k in np.argsort(-similarity)]
        chosen.append(order)
        cohesion.append(float(similarity.mean()))
    keywords = [
        [_as_written(word, [texts[i] for i in members]) for word in words]
        for members, words in zip(chosen, _keywords(chosen, texts), strict=True)
    ]
    groups = [
        Group(_name(words), words, members, c)
        for members, words, c in zip(chosen, keywords, cohesion, strict=True)
    ]
    return sorted(groups, key=lambda g: -len(g.members))


def _as_written(word: str, texts: Sequence[str]) -> str:
    """The keyword as the comments most often write it ("AI", not "ai")."""
    found = Counter(
        m.group(0) for t in texts for m in re.finditer(re.escape(word), t, re.IGNORECASE)
    )
    return found.most_common(1)[0][0] if found else word


def _name(keywords: list[str]) -> str:
    if not keywords:
        return "Unnamed group"
    name = " · ".join(keywords[:2])[:100]
    return name[0].upper() + name[1:]


# --- runs -------------------------------------------------------------------------------


def request_discovery(since: date, until: date, by: User | None = None) -> ThemeDiscovery:
    if until < since:
        raise FieldError("until", "is before since")
    if (until - since).days > 366:
        raise FieldError("since", "a period of at most a year")
    return ThemeDiscovery.objects.create(since=since, until=until, requested_by=by)


def run(discovery: ThemeDiscovery) -> list[ThemeCandidate]:
    """Group the period's unclassified comments and store the candidates."""
    answers = list(unclassified(discovery.since, discovery.until)[:MAX_COMMENTS])
    answers = [a for a in answers if classifier.has_words(a.comment)]
    texts = [a.comment for a in answers]
    groups = group(texts)
    with transaction.atomic():
        created = [
            ThemeCandidate.objects.create(
                discovery=discovery,
                name=g.name,
                keywords=g.keywords,
                size=len(g.members),
                share=round(len(g.members) / len(texts), 4),
                examples=_distinct([texts[i] for i in g.members])[:EXAMPLES],
                response_ids=[answers[i].pk for i in g.members],
            )
            for g in groups
        ]
        ThemeDiscovery.objects.filter(pk=discovery.pk).update(
            status=ThemeDiscovery.Status.DONE, finished_at=timezone.now(), comments=len(texts)
        )
    return created


def _distinct(texts: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for text in texts:
        key = " ".join(_words(text))
        if key not in seen:
            seen.add(key)
            kept.append(text)
    return kept


def handle_theme_discovery() -> bool:
    """Worker step: run one queued discovery once the period's comments have been read
    (or after WAIT_FOR_TAGGING, reading what is there)."""
    now = timezone.now()
    fail_cut_off(ThemeDiscovery, now)
    for discovery in ThemeDiscovery.objects.filter(status=ThemeDiscovery.Status.QUEUED).order_by(
        "requested_at", "id"
    )[:5]:
        if now - discovery.requested_at < WAIT_FOR_TAGGING and _still_reading(discovery, now):
            continue
        queued = ThemeDiscovery.objects.filter(pk=discovery.pk, status=ThemeDiscovery.Status.QUEUED)
        if not claims.claim(queued, status=ThemeDiscovery.Status.RUNNING, started_at=now):
            continue
        try:
            run(discovery)
        except Exception as exc:  # shown on the page; nothing half-written
            log.exception("theme discovery %s failed", discovery.pk)
            fail_run(ThemeDiscovery, discovery.pk, exc)
        return True
    return False


def _still_reading(discovery: ThemeDiscovery, now: datetime) -> bool:
    return Response.objects.filter(
        within(discovery.since, discovery.until), themes_status="pending"
    ).exists()


# --- decisions --------------------------------------------------------------------------


def _open(candidate: ThemeCandidate) -> ThemeCandidate:
    locked = ThemeCandidate.objects.select_for_update().get(pk=candidate.pk)
    if locked.status != ThemeCandidate.Status.OPEN:
        raise FieldError("candidate", f"already {locked.status}")
    return locked


@transaction.atomic
def accept(candidate: ThemeCandidate, name: str, by: User | None, slug: str = "") -> Theme:
    """The candidate becomes a theme; its comments are tagged with it (as corrections, so
    they teach the model) and a retraining is queued."""
    candidate = _open(candidate)
    theme = taxonomy.add_theme(
        name,
        slug=slug,
        description="Found by discovery: " + ", ".join(candidate.keywords),
    )
    ids = candidate.response_ids[:MAX_TAGGED_ON_ACCEPT]
    for response in Response.objects.filter(pk__in=ids):
        learning.correct(
            response, [theme], by=by, via="discovery", source=ThemeExample.Source.DISCOVERY
        )
    candidate.status = ThemeCandidate.Status.ACCEPTED
    candidate.theme = theme
    candidate.decided_by = by
    candidate.decided_at = timezone.now()
    candidate.save(update_fields=["status", "theme", "decided_by", "decided_at"])
    learning.request_training(by)
    return theme


@transaction.atomic
def dismiss(candidate: ThemeCandidate, by: User | None) -> ThemeCandidate:
    candidate = _open(candidate)
    candidate.status = ThemeCandidate.Status.DISMISSED
    candidate.decided_by = by
    candidate.decided_at = timezone.now()
    candidate.save(update_fields=["status", "decided_by", "decided_at"])
    return candidate
