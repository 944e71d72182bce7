"""Changing the themes while history keeps its meaning (docs/domain.md §6).

- add a theme; rename it or change its description, probes and owner (its slug stays,
  so API callers and saved filters keep working);
- merge one theme into another: its tags move to the other (an answer tagged with both
  keeps one tag), and the merged theme stays as a pointer (`merged_into`), so its
  examples teach the other theme and old links still resolve;
- split a theme into new ones: they start with its description and probes; it is
  retired, its tags stay readable, and `sort_split` moves each of its answers to the new
  theme a person chooses (a correction the model learns from);
- retire a theme (no longer given, added or taught; its tags stay readable) and
  restore it.

Every refusal is a FieldError naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from closeloop.core.errors import FieldError
from closeloop.surveys.models import Response
from closeloop.team.models import User

from . import learning
from .models import UNCLASSIFIED, Theme, ThemeTag

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# "unclassified" is a filter value; the others are API paths under /themes/.
RESERVED = {
    UNCLASSIFIED,
    "none",
    "all",
    "classify",
    "trainings",
    "retrain",
    "discoveries",
    "candidates",
}
MAX_PROBES = 10


def _clean_name(name: str, field: str = "name", theme: Theme | None = None) -> str:
    """The name, tidied; unique ignoring case among all themes (retired ones included, as
    reports still name them), so two themes never read the same in a report."""
    name = " ".join((name or "").split())
    if not name:
        raise FieldError(field, "give the theme a name")
    if len(name) > 100:
        raise FieldError(field, "at most 100 characters")
    same = Theme.objects.filter(name__iexact=name)
    if theme is not None:
        same = same.exclude(pk=theme.pk)
    found = same.first()
    if found is not None:
        raise FieldError(
            field, f"a theme named {found.name!r} already exists ({found.state}); choose another"
        )
    return name


def _clean_probes(probes: Sequence[str]) -> list[str]:
    cleaned = [" ".join(p.split()) for p in probes if p and p.strip()]
    if len(cleaned) > MAX_PROBES:
        raise FieldError("probes", f"at most {MAX_PROBES} probe questions")
    for index, probe in enumerate(cleaned):
        if len(probe) > 300:
            raise FieldError(f"probes.{index}", "at most 300 characters")
    return cleaned


def _new_slug(name: str, slug: str, field: str) -> str:
    slug = (slug or slugify(name))[:60].strip("-")
    if not SLUG.match(slug):
        raise FieldError(field, "use lower-case letters, digits and single hyphens")
    if slug in RESERVED:
        raise FieldError(field, f"{slug!r} is reserved")
    if Theme.objects.filter(slug=slug).exists():
        raise FieldError(field, f"a theme {slug!r} already exists (retired ones included)")
    return slug


def _owner(owner: User | None) -> User | None:
    if owner is not None and not owner.is_active:
        raise FieldError("owner", "choose an active user")
    return owner


def _active(theme: Theme, field: str) -> Theme:
    if not theme.is_active:
        raise FieldError(field, f"{theme.name} is {theme.state}")
    return theme


@transaction.atomic
def add_theme(
    name: str,
    *,
    slug: str = "",
    description: str = "",
    probes: Sequence[str] = (),
    owner: User | None = None,
    split_from: Theme | None = None,
    field: str = "name",
) -> Theme:
    name = _clean_name(name, field)
    return Theme.objects.create(
        slug=_new_slug(name, slug, "slug" if slug else field),
        name=name,
        description=(description or "").strip()[:2000],
        probes=_clean_probes(probes),
        owner=_owner(owner),
        split_from=split_from,
    )


@transaction.atomic
def edit_theme(
    theme: Theme,
    *,
    name: str,
    description: str,
    probes: Sequence[str],
    owner: User | None,
) -> Theme:
    """Rename and describe a theme; its slug never changes."""
    theme.name = _clean_name(name, theme=theme)
    theme.description = (description or "").strip()[:2000]
    theme.probes = _clean_probes(probes)
    theme.owner = _owner(owner)
    theme.save(update_fields=["name", "description", "probes", "owner"])
    return theme


@transaction.atomic
def merge(source: Theme, target: Theme) -> int:
    """Fold `source` into `target`; returns how many answers' tags moved."""
    source = Theme.objects.select_for_update().get(pk=source.pk)
    _active(source, "theme")
    _active(target, "into")
    if source.pk == target.pk:
        raise FieldError("into", "choose another theme to merge into")
    both = ThemeTag.objects.filter(theme=target).values("response_id")
    moved = ThemeTag.objects.filter(theme=source).exclude(response_id__in=both).update(theme=target)
    ThemeTag.objects.filter(theme=source).delete()  # answers that already had the target
    source.merged_into = target
    source.retired_at = timezone.now()
    source.save(update_fields=["merged_into", "retired_at"])
    return moved


@transaction.atomic
def split(source: Theme, names: Sequence[str]) -> list[Theme]:
    """New themes in place of `source`, which is retired with its tags kept."""
    source = Theme.objects.select_for_update().get(pk=source.pk)
    _active(source, "theme")
    names = [n for n in names if n and n.strip()]
    if len(names) < 2:
        raise FieldError("names", "name at least two themes to split into")
    if len(names) > 10:
        raise FieldError("names", "at most ten themes")
    created = [
        add_theme(
            name,
            description=source.description,
            probes=source.probes,
            owner=source.owner,
            split_from=source,
            field=f"names.{index}",
        )
        for index, name in enumerate(names)
    ]
    source.retired_at = timezone.now()
    source.save(update_fields=["retired_at"])
    return created


def unsorted_answers(source: Theme, limit: int = 50) -> list[Response]:
    """Answers still carrying a split theme, with none of the themes it became."""
    children = list(source.split_into.values_list("pk", flat=True))
    return list(
        Response.objects.filter(theme_tags__theme=source)
        .exclude(theme_tags__theme__in=children)
        .select_related("person", "account")
        .order_by("-created_at")[:limit]
    )


@transaction.atomic
def sort_split(source: Theme, choices: dict[int, Theme | None], by: User | None, via: str) -> int:
    """Move answers of a split theme to the new theme chosen for each (None: none of
    them); each move is a correction the next retraining learns from."""
    children = {t.pk for t in source.split_into.all()}
    done = 0
    for response_id, theme in choices.items():
        if theme is not None and theme.pk not in children:
            raise FieldError(f"answer.{response_id}", f"{theme.name} is not part of the split")
        response = Response.objects.filter(pk=response_id, theme_tags__theme=source).first()
        if response is None:
            raise FieldError(f"answer.{response_id}", "no such answer with this theme")
        learning.correct(response, [theme] if theme else [], [source], by=by, via=via)
        done += 1
    return done


@transaction.atomic
def retire(theme: Theme) -> Theme:
    theme = Theme.objects.select_for_update().get(pk=theme.pk)
    _active(theme, "theme")
    theme.retired_at = timezone.now()
    theme.save(update_fields=["retired_at"])
    return theme


@transaction.atomic
def restore(theme: Theme) -> Theme:
    theme = Theme.objects.select_for_update().get(pk=theme.pk)
    if theme.merged_into_id:
        raise FieldError("theme", f"{theme.name} was merged; its tags are on another theme")
    theme.retired_at = None
    theme.save(update_fields=["retired_at"])
    return theme
