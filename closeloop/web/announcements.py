"""Pages for "fix shipped" announcements: draft, choose the cases, preview, send.

The rules (who is told, once per person, what is logged) live in
`loop.models.Announcement`; these views read forms and call it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from closeloop.core.errors import FieldError
from closeloop.delivery.models import Delivery
from closeloop.loop import actions
from closeloop.loop.models import Announcement
from closeloop.loop.outreach import FIX_VARIABLES
from closeloop.team.models import User
from closeloop.themes.models import Theme

from .views import _base, form_pk, reported


def _writer(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not user.can_write():
        raise PermissionDenied("viewers cannot send announcements")
    return user


def _ids(raw: str) -> list[int]:
    """Case numbers typed as '12, 15 #19'; anything else is refused by name."""
    ids = []
    for part in raw.replace(",", " ").split():
        part = part.lstrip("#")
        if not part.isdigit() or len(part) > 18:
            raise FieldError("case_ids", f"{part!r} is not a case number")
        ids.append(int(part))
    return ids


@login_required
def announcements(request: HttpRequest) -> HttpResponse:
    """The list, newest first, and a form for a new draft."""
    if request.method == "POST":
        user = _writer(request)
        post = request.POST
        with reported(request) as outcome:
            draft = Announcement.draft(
                _ids(post.get("case_ids", "")),
                title=post.get("title", "").strip(),
                details=post.get("details", "").strip(),
                tag=post.get("tag", "").strip()[:50],
                theme=Theme.named(post.get("theme", "")),
                created_by=user,
            )
        if outcome.refused:
            return render(
                request, "web/announcements.html", _base(items=_items(), form=post), status=422
            )
        return redirect("announcement", draft.pk)
    # "Announce a fix" on the themes page arrives with the theme chosen.
    form = {"theme": request.GET.get("theme", "")}
    return render(request, "web/announcements.html", _base(items=_items(), form=form))


def _items() -> list[Announcement]:
    return list(
        Announcement.objects.select_related("theme")
        .annotate(n=Count("cases"))
        .order_by("-created_at")[:100]
    )


@login_required
def announcement(request: HttpRequest, pk: int) -> HttpResponse:
    """One announcement: its message and preview, its cases, and (while a draft) editing."""
    item = get_object_or_404(Announcement, pk=pk)
    if request.method == "POST":
        user = _writer(request)
        with reported(request):
            messages.success(request, _act(item, request, user))
        return redirect("announcement", item.pk)
    cases = item.chosen_cases()
    first = item.preview(cases)
    preview = None
    if first is not None:
        preview = dict(zip(("case", "subject", "body"), first, strict=True))
    by_case = {
        d.case_id: d for d in Delivery.objects.filter(announcement=item).order_by("created_at")
    }
    rows = [(c, by_case.get(c.pk)) for c in cases]
    people = len({c.person_id for c in cases})
    return render(
        request,
        "web/announcement.html",
        _base(
            item=item,
            rows=rows,
            people=people,
            preview=preview,
            variables=FIX_VARIABLES,
            tagged=item.tagged_cases(item.tag).count() if item.tag else 0,
            themed=item.themed_cases(item.theme).count() if item.theme_id else 0,
        ),
    )


def _act(item: Announcement, request: HttpRequest, user: User) -> str:
    post = request.POST
    action = post.get("action", "")
    if item.status == Announcement.Status.SENT:
        raise FieldError("status", "this announcement was already sent")
    current = list(item.cases.values_list("pk", flat=True))
    if action == "save":
        item.title = post.get("title", "").strip()
        item.details = post.get("details", "").strip()
        item.tag = post.get("tag", "").strip()[:50]
        item.theme = Theme.named(post.get("theme", ""))
        item.subject = post.get("subject", "").strip()
        item.body = post.get("body", "").replace("\r\n", "\n").strip()
        item.resolve = post.get("resolve") == "on"
        item.validate_draft()
        item.save()
        return "Draft saved."
    if action == "add":
        item.choose(
            current + _ids(post.get("case_ids", "")),
            by_tag=post.get("by_tag") == "on",
            by_theme=post.get("by_theme") == "on",
        )
        return "Cases added."
    if action == "remove":
        gone = {form_pk(v) for v in post.getlist("case")}
        item.choose([pk for pk in current if pk not in gone])
        return f"{len(gone)} case(s) removed."
    if action == "send":
        actions.send_announcement(item, user)
        return (
            f"Queued {item.emailed} email(s); {item.not_emailed} customer(s) could not be emailed."
        )
    raise FieldError("action", f"unknown action {action!r}")
