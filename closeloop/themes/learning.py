"""How closeloop learns from the team: corrections become examples, and retraining
(nightly, and whenever someone asks) turns them into the model every worker uses.

- `correct` adds or removes themes on an answer (the case page corrects its answer)
  and keeps the answer's comment with its corrected themes as a ThemeExample.
- `request_training` queues a retraining; `handle_theme_training` (a worker step) runs
  queued ones and, once a night after NIGHTLY_HOUR, one more if anything changed.
- `current_model` gives the newest trained model from the database (all workers share
  it), or the model of the shipped examples while nobody has retrained. That one is
  trained once, at install (`manage.py prepare_models`) or by a worker
  that finds it missing (`handle_model_preparation`), and stored beside the virtualenv
  (`model_files`); web processes only load it, and say "not ready" (503) while it is
  missing rather than train it inside a request.

A training set is the shipped examples plus the people's, with the taxonomy's history
applied: a merged theme's examples count for the theme it became, a retired theme is
no longer taught, and a person's example replaces a shipped one with the same text.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone

from closeloop.core import claims, periods
from closeloop.core.errors import FieldError
from closeloop.core.reading import fail_cut_off, fail_run
from closeloop.surveys.models import Response
from closeloop.team.models import User

from . import classifier, model_files
from .models import Theme, ThemeExample, ThemeTag, ThemeTraining

log = logging.getLogger("closeloop.themes")

NIGHTLY_HOUR = 2  # local time of the organisation


# --- corrections ------------------------------------------------------------------------


def resolve_themes(slugs: Sequence[str], field: str, *, for_adding: bool) -> list[Theme]:
    """The themes named by `slugs`; a merged theme stands for the one it became."""
    found = {t.slug: t for t in Theme.objects.filter(slug__in=slugs).select_related("merged_into")}
    themes = []
    for index, slug in enumerate(slugs):
        theme = found.get(slug)
        if theme is None:
            raise FieldError(f"{field}.{index}", f"no theme {slug!r}")
        theme = theme.current
        if for_adding and theme.retired_at is not None:
            raise FieldError(f"{field}.{index}", f"the theme {slug!r} is retired")
        themes.append(theme)
    return themes


@transaction.atomic
def correct(
    response: Response,
    add: Sequence[Theme] = (),
    remove: Sequence[Theme] = (),
    *,
    by: User | None = None,
    via: str = "",
    source: str = ThemeExample.Source.CORRECTION,
) -> list[ThemeTag]:
    """Add and remove themes on an answer as a person; returns its tags afterwards.

    An added theme the model had already found becomes the person's; a removed theme
    goes whoever gave it. With a comment, the answer's themes after the correction
    become (or replace) its training example.
    """
    user = by if by is not None and by.pk else None
    now = timezone.now()
    Response.objects.select_for_update().filter(pk=response.pk).first()
    ThemeTag.objects.filter(response=response, theme__in=list(remove)).delete()
    for theme in add:
        ThemeTag.objects.update_or_create(
            response=response,
            theme=theme,
            defaults={
                "source": ThemeTag.Source.PERSON,
                "confidence": None,
                "model_version": "",
                "created_by": user,
                "created_at": now,
            },
        )
    tags = list(response.theme_tags.select_related("theme").order_by("theme__name"))
    if classifier.has_words(response.comment):
        ThemeExample.objects.update_or_create(
            response=response,
            defaults={
                "text": response.comment,
                "themes": sorted(t.theme.slug for t in tags),
                "source": source,
                "created_by": user,
                "via": via[:120],
                "updated_at": now,
            },
        )
    return tags


# --- the training set ---------------------------------------------------------------------


def slug_map(rows: Sequence[Theme] | None = None) -> dict[str, str | None]:
    """Each theme's slug → the slug its examples now teach (None: no longer taught).
    `rows`, when given, are every Theme, already read."""
    themes = {t.pk: t for t in (Theme.objects.all() if rows is None else rows)}
    mapping: dict[str, str | None] = {}
    for theme in themes.values():
        current, seen = theme, set()
        while current.merged_into_id is not None and current.pk not in seen:
            seen.add(current.pk)
            current = themes[current.merged_into_id]
        mapping[theme.slug] = None if current.retired_at is not None else current.slug
    return mapping


def _relabel(themes: Sequence[str], mapping: dict[str, str | None]) -> tuple[str, ...]:
    """Themes as they are now; a slug with no Theme row is kept as it is, as the analysis
    keeps it (`analysis._relabel`): only a merge or a retirement changes a label."""
    return tuple(sorted({m for t in themes if (m := mapping.get(t, t)) is not None}))


def training_set() -> tuple[list[classifier.Example], int]:
    """(every example the next model learns from, how many of them are people's).

    An example all of whose themes were retired (or split) is left out: it would
    otherwise teach "no theme" about comments that have one."""
    mapping = slug_map()

    def kept(text: str, themes: Sequence[str]) -> classifier.Example | None:
        now = _relabel(themes, mapping)
        return classifier.Example(text, now) if now or not themes else None

    people: dict[str, classifier.Example | None] = {
        classifier.clean(e.text).lower(): kept(e.text, e.themes)
        for e in ThemeExample.objects.order_by("updated_at", "id")
        if classifier.has_words(e.text)
    }
    shipped = [
        example
        for e in _shipped()[0]
        if classifier.clean(e.text).lower() not in people
        and (example := kept(e.text, e.themes)) is not None
    ]
    taught = [e for e in people.values() if e is not None]
    return shipped + taught, len(taught)


# --- the model in use ---------------------------------------------------------------------

_lock = threading.Lock()
_cache: dict[str, classifier.ThemeClassifier] = {}
SHIPPED_PREFIX = "themes-"


@functools.cache
def _shipped() -> tuple[list[classifier.Example], str]:
    """The shipped examples and their version, read once per process (they ship with the
    code, so they cannot change under a running worker)."""
    examples = classifier.load_examples()
    return examples, classifier.version_of(examples)


def shipped_path() -> Path:
    """The file of the shipped examples' model; its name carries their version."""
    return model_files.MODEL_DIR / f"{SHIPPED_PREFIX}{_shipped()[1]}.joblib"


def _shipped_model() -> classifier.ThemeClassifier:
    """The model of the shipped examples alone, read from its file once per process.
    Never trained here: `build_shipped` does that, at install or in a worker."""
    version = _shipped()[1]
    if version not in _cache:
        path = shipped_path()
        if not path.exists():
            raise model_files.ModelNotReady("theme model")
        _cache[version] = classifier.from_bytes(path.read_bytes())
    return _cache[version]


def build_shipped(*, wait: bool = True) -> bool:
    """Train the shipped examples' model and store it, unless its file is there.

    Under a lock beside the file: a second builder (another worker, an install running
    at the same time) waits and then finds the file, or with `wait=False` returns at
    once. Files of older versions are removed. True when this call trained it."""
    path = shipped_path()
    with model_files.exclusive(path.with_name(SHIPPED_PREFIX + "build.lock"), wait=wait) as got:
        if not got or path.exists():
            return False
        examples, version = _shipped()
        started = time.perf_counter()
        model = classifier.train(examples, version)
        model_files.write_atomically(path, classifier.to_bytes(model))
        for old in path.parent.glob(f"{SHIPPED_PREFIX}*.joblib"):
            if old != path:
                old.unlink(missing_ok=True)
        log.info("theme model %s trained in %.1f s", version, time.perf_counter() - started)
        return True


def model_ready() -> bool:
    """Whether `current_model` can answer without training (a retrained model in the
    database, or the shipped one's file)."""
    return shipped_path().exists() or _newest() is not None


def handle_model_preparation() -> bool:
    """Worker step: build the shipped examples' model when its file is missing (a new
    version of the examples, or an install that skipped it); other workers go on."""
    if shipped_path().exists():
        return False
    return build_shipped(wait=False)


def _newest() -> tuple[int, str] | None:
    return (
        ThemeTraining.objects.filter(status=ThemeTraining.Status.DONE, model__isnull=False)
        .order_by("-finished_at", "-id")
        .values_list("pk", "version")
        .first()
    )


def current_version() -> str:
    """The version of the model in use, without loading or training it."""
    newest = _newest()
    return newest[1] if newest else _shipped()[1]


def current_model() -> classifier.ThemeClassifier:
    """The newest retrained model in the database, or the shipped examples' model."""
    newest = _newest()
    with _lock:
        if newest is None:
            return _shipped_model()
        pk, version = newest
        if version not in _cache:
            blob = ThemeTraining.objects.values_list("model", flat=True).get(pk=pk)
            _cache[version] = classifier.from_bytes(bytes(blob or b""))
        return _cache[version]


# --- retraining ---------------------------------------------------------------------------


def request_training(by: User | None = None) -> ThemeTraining:
    """Queue a retraining now; the worker runs it next."""
    user = by if by is not None and by.pk else None
    return ThemeTraining.objects.create(kind=ThemeTraining.Kind.ON_DEMAND, requested_by=user)


def _claim_queued(now: datetime) -> ThemeTraining | None:
    fail_cut_off(ThemeTraining, now)
    queued = ThemeTraining.objects.filter(status=ThemeTraining.Status.QUEUED)
    taken = claims.claim(
        queued.order_by("requested_at", "id"), status=ThemeTraining.Status.RUNNING, started_at=now
    )
    return ThemeTraining.objects.get(pk=taken[0]) if taken else None


def _queue_nightly(now: datetime) -> None:
    """Once a night after NIGHTLY_HOUR: a run, queued only if the examples changed."""
    local = now.astimezone(periods.org_zone())
    if local.hour < NIGHTLY_HOUR:
        return
    day = local.date()
    if ThemeTraining.objects.filter(kind=ThemeTraining.Kind.NIGHTLY, day=day).exists():
        return
    examples, _ = training_set()
    unchanged = classifier.version_of(examples) == current_version()
    try:
        with transaction.atomic():
            ThemeTraining.objects.create(
                kind=ThemeTraining.Kind.NIGHTLY,
                day=day,
                requested_at=now,
                status=ThemeTraining.Status.UNCHANGED if unchanged else ThemeTraining.Status.QUEUED,
                finished_at=now if unchanged else None,
            )
    except IntegrityError:
        return  # another worker queued tonight's


def handle_theme_training() -> bool:
    """Worker step: queue tonight's retraining when due, and run one queued retraining."""
    now = timezone.now()
    _queue_nightly(now)
    run = _claim_queued(now)
    if run is None:
        return False
    started = time.perf_counter()
    try:
        examples, corrections = training_set()
        version = classifier.version_of(examples)
        fields = {"examples": len(examples), "corrections": corrections, "version": version}
        if version == current_version():
            ThemeTraining.objects.filter(pk=run.pk).update(
                status=ThemeTraining.Status.UNCHANGED, finished_at=timezone.now(), **fields
            )
            return True
        model = classifier.train(examples, version)
        blob = classifier.to_bytes(model)
    except Exception as exc:  # a failed run is shown, and the model in use stays
        log.exception("theme retraining %s failed", run.pk)
        fail_run(ThemeTraining, run.pk, exc)
        return True
    with _lock:
        _cache[version] = model
    ThemeTraining.objects.filter(pk=run.pk).update(
        status=ThemeTraining.Status.DONE, finished_at=timezone.now(), model=blob, **fields
    )
    log.info(
        "theme model %s trained on %d examples (%d corrections) in %.1f s",
        version,
        len(examples),
        corrections,
        time.perf_counter() - started,
    )
    return True
