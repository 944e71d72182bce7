"""Protocol sheets (docs/closed-loop.md §12): per theme, the team that owns its cases,
answers approved in advance (templates the owner inserts into a reply, linted), the next
steps to take, and the department to loop in. The case page shows the sheets of the
case's themes, their answers filled in for its customer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from closeloop.core.errors import FieldError
from closeloop.team.models import Team
from closeloop.themes.models import Theme

from . import outreach
from .models import FollowUpCase

MAX_ANSWERS = 10
MAX_STEPS = 15


def _text(value: Any, field: str, limit: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise FieldError(field, "must be text")
    text = value.replace("\r\n", "\n").strip()
    if required and not text:
        raise FieldError(field, "must not be empty")
    if len(text) > limit or "\x00" in text:
        raise FieldError(field, f"at most {limit} characters, no NUL")
    return text


def set_sheet(
    theme: Theme,
    *,
    team: Team | None,
    approved_answers: list[dict[str, Any]],
    next_steps: list[str],
    loop_in: str,
) -> Theme:
    """Replace a theme's protocol sheet, or refuse it whole with a FieldError naming the
    field (`approved_answers.2.body`): each answer must pass `outreach.lint_answer`."""
    if len(approved_answers) > MAX_ANSWERS:
        raise FieldError("approved_answers", f"at most {MAX_ANSWERS}")
    if len(next_steps) > MAX_STEPS:
        raise FieldError("next_steps", f"at most {MAX_STEPS}")
    clean = []
    for i, answer in enumerate(approved_answers):
        if not isinstance(answer, dict) or set(answer) - {"title", "body"}:
            raise FieldError(f"approved_answers.{i}", "give a title and a body")
        title = _text(answer.get("title", ""), f"approved_answers.{i}.title", 100)
        body = _text(answer.get("body", ""), f"approved_answers.{i}.body", 2000)
        findings = outreach.lint_answer(body, f"approved_answers.{i}.body")
        if findings:
            raise FieldError(f"approved_answers.{i}.body", "; ".join(f.message for f in findings))
        clean.append({"title": title, "body": body})
    steps = [_text(s, f"next_steps.{i}", 300) for i, s in enumerate(next_steps)]
    theme.team = team
    theme.approved_answers = clean
    theme.next_steps = steps
    theme.loop_in = _text(loop_in, "loop_in", 200, required=False)
    theme.save(update_fields=["team", "approved_answers", "next_steps", "loop_in"])
    return theme


@dataclass(frozen=True)
class Sheet:
    """A theme's protocol sheet as one case reads it: answers filled in for its customer."""

    slug: str
    name: str
    team: str | None
    next_steps: list[str]
    loop_in: str
    approved_answers: list[dict[str, str]]

    def as_json(self) -> dict[str, Any]:
        return {
            "theme": self.slug,
            "name": self.name,
            "team": self.team,
            "next_steps": self.next_steps,
            "loop_in": self.loop_in,
            "approved_answers": self.approved_answers,
        }


def sheets_for(case: FollowUpCase) -> list[Sheet]:
    """The sheets of the themes on the case's answers, in the order of the themes' names."""
    themes = (
        Theme.objects.filter(
            Q(tags__response=case.response_id) | Q(tags__response__in=case.responses.all())
        )
        .select_related("team", "merged_into__team")
        .distinct()
        .order_by("name")
    )
    values = outreach.values_for(case)
    sheets = []
    seen = set()
    for found in themes:
        theme = found.current
        if theme.pk in seen or not theme.has_sheet:
            continue
        seen.add(theme.pk)
        sheets.append(
            Sheet(
                slug=theme.slug,
                name=theme.name,
                team=theme.team.name if theme.team else None,
                next_steps=list(theme.next_steps),
                loop_in=theme.loop_in,
                approved_answers=[
                    {"title": a["title"], "body": outreach.fill(a["body"], values)}
                    for a in theme.approved_answers
                ],
            )
        )
    return sheets
