"""Pages for the follow-up: the inbox, a case with its guide, notifications, the quarantine.

Views read the form, call the case's own methods (which log every event) and
redirect; the rules live in closeloop.loop.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from closeloop.core.errors import FieldError
from closeloop.delivery.models import Delivery, Outage
from closeloop.insights import effects, program
from closeloop.insights.filters import theme_matches
from closeloop.loop import (
    actions,
    erasure,
    guide,
    notify,
    outreach,
    payloads,
    protocols,
    retriage,
)
from closeloop.loop.messages import money
from closeloop.loop.models import (
    CALL_OUTCOMES,
    Announcement,
    FollowUpCase,
    Gesture,
    InboundMessage,
    Notification,
    Task,
    TriagePolicy,
    open_filter,
    overdue_filter,
    revenue_at_risk,
    waiting_for_person,
)
from closeloop.surveys.models import Response
from closeloop.team.models import Role, User
from closeloop.themes import learning
from closeloop.themes.models import Theme

from .views import DEFAULT_DAYS, _base, _filters, form_pk, reported

VIEWS = {
    "mine": "My cases",
    "team": "My team",
    "overdue": "Overdue",
    "escalated": "Escalated",
    "unassigned": "Unassigned",
    "all": "All open",
    "closed": "Closed",
}


def _view(view: str, user: User) -> Q:
    """Which cases a queue holds."""
    if view == "closed":
        return ~open_filter()
    where = {
        "mine": Q(owner=user),
        "team": Q(owner__in=user.team()),
        "overdue": overdue_filter(),
        "escalated": Q(escalation_level__gt=0),
        "unassigned": Q(owner__isnull=True),
    }.get(view, Q())
    return open_filter() & where


def _figure_cases(
    request: HttpRequest, loop: str
) -> tuple[QuerySet[FollowUpCase] | None, str, str | None]:
    """The cases behind a program figure (`?figure=…&since=…&until=…[&owner=…|&team=…]`),
    open and closed alike; (None, "", None) when the page is not showing one."""
    figure, effect_by = request.GET.get("figure"), request.GET.get("effect_by")
    if not figure and not effect_by:
        return None, "", None
    if effect_by:
        key = request.GET.get("effect", "")
        if effect_by not in effects.DIMENSIONS:
            return None, "", f"effect_by: must be one of {', '.join(effects.DIMENSIONS)}"
        if key not in effects.labels(effect_by):
            return None, "", f"effect: not a {effects.DIMENSIONS[effect_by].lower()}"
        condition = effects.case_filter(effect_by, key)
        what = f"{effects.DIMENSIONS[effect_by]}: {effects.label(effect_by, key)}"
    elif figure not in program.FIGURE_LABELS:
        return None, "", f"figure: must be one of {', '.join(program.FIGURE_LABELS)}"
    else:
        condition, what = program.case_filter(figure), program.FIGURE_LABELS[figure]
    _, flt, error = _filters(request)
    if error:
        return None, "", error
    since, until = flt.period(DEFAULT_DAYS)
    qs = program.with_facts(program.cases_opened(since, until, loop)).filter(condition)
    for name in ("owner", "team"):
        value = request.GET.get(name)
        if value == "none":
            qs = qs.filter(**{f"{name}__isnull": True})
        elif value:
            qs = qs.filter(**{f"{name}_id": form_pk(value)})
    heading = f"{what}, opened {since:%-d %b %Y} – {until:%-d %b %Y}"
    return qs, heading, None


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """Cases by priority in tabs with counts, revenue at risk, and simple filters."""
    user: User = request.user  # type: ignore[assignment]
    view = request.GET.get("view") or ("mine" if user.role == Role.AGENT else "all")
    if view not in VIEWS:
        view = "all"
    loop = request.GET.get("loop", "detractor")
    if loop not in FollowUpCase.Loop.values:
        loop = "detractor"
    band = request.GET.get("band", "")
    theme = request.GET.get("theme", "")
    kind = request.GET.get("type", "")
    base = FollowUpCase.objects.filter(loop=loop)
    if band in ("severe", "moderate", "mild"):
        base = base.filter(band=band)
    if kind in FollowUpCase.DetractorType.values:
        base = base.filter(detractor_type=kind)
    elif kind == "unknown":
        base = base.filter(detractor_type="")
    if theme:
        base = base.filter(theme_matches(theme, "response__"))
    counts = base.aggregate(**{key: Count("pk", filter=_view(key, user)) for key in VIEWS})
    matching, heading, error = _figure_cases(request, loop)
    chosen = matching if matching is not None else base.filter(_view(view, user))
    cases = (
        chosen.select_related("owner", "person", "account", "response")
        .prefetch_related("response__theme_tags__theme")
        .order_by("-priority", "-id")[:200]
    )
    open_detractors = FollowUpCase.objects.filter(open_filter(), loop="detractor")
    return render(
        request,
        "web/inbox.html",
        _base(
            view=view,
            views=[(k, v, counts[k]) for k, v in VIEWS.items()],
            cases=cases,
            loop=loop,
            band=band,
            theme=theme,
            kind=kind,
            detractor_types=FollowUpCase.DetractorType.choices,
            at_risk=money(revenue_at_risk(open_detractors)),
            open_count=open_detractors.count(),
            overdue_count=open_detractors.filter(overdue_filter()).count(),
            now=timezone.now(),
            figure_heading=heading,
            figure_count=matching.count() if matching is not None else None,
            error=error,
        ),
    )


def _case(pk: int) -> FollowUpCase:
    return get_object_or_404(
        FollowUpCase.objects.select_related(
            "owner", "person", "account__executive_sponsor", "response", "policy", "team"
        ),
        pk=pk,
    )


@login_required
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The customer's context beside the timeline, and the conversation guide."""
    case = _case(pk)
    person = case.person
    history = Response.objects.filter(person=person).order_by("-created_at")[:20]
    previous_cases = (
        FollowUpCase.objects.filter(person=person).exclude(pk=case.pk).order_by("-created_at")[:10]
    )
    template = outreach.draft_for(case)
    talk = payloads.conversation_of(case)
    subject, body = outreach.render_for(case, template, talk.url if talk else "")
    theme_tags = (
        list(
            case.response.theme_tags.select_related("theme", "created_by").order_by(
                "-source", "-confidence"
            )
        )
        if case.response is not None
        else []
    )
    return render(
        request,
        "web/case.html",
        _base(
            case=case,
            history=history,
            previous_cases=previous_cases,
            activities=case.activities.select_related("actor").order_by("-created_at", "-id"),
            tasks=case.tasks.order_by("done_at", "due_at"),
            open_promises=case.tasks.filter(kind="commitment", done_at__isnull=True).order_by(
                "due_at"
            ),
            promise_outcomes=Task.Outcome.choices,
            gesture_kinds=Gesture.Kind.choices,
            failed=case.deliveries.filter(status=Delivery.Status.FAILED),
            steps=guide.STEPS,
            probes=guide.probes_for(
                [(t.theme.slug, t.theme.name, t.theme.probes) for t in theme_tags],
                list(case.response.tags) if case.response is not None else [],
            ),
            theme_tags=theme_tags,
            sheets=protocols.sheets_for(case),
            current_policy=TriagePolicy.current(),
            talk=talk,
            addable_themes=Theme.objects.filter(retired_at__isnull=True, merged_into__isnull=True)
            .exclude(pk__in=[t.theme_id for t in theme_tags])
            .order_by("name"),
            draft_subject=subject,
            draft_body=body,
            findings=outreach.lint(
                template.subject,
                template.body,
                person.locale or "en",
                answered=case.response is not None,
            ),
            outcomes=[(o, o.replace("_", " ")) for o in CALL_OUTCOMES],
            resolutions=[
                (v, label)
                for v, label in FollowUpCase.Resolution.choices
                if v != FollowUpCase.Resolution.SUPERSEDED
            ],
            detractor_types=FollowUpCase.DetractorType.choices,
            # Each with their load: open cases that wait for a person (routing caps it).
            assignees=User.objects.filter(is_active=True)
            .exclude(role=Role.VIEWER)
            .annotate(open_personal=Count("cases", filter=waiting_for_person("cases__"))),
            arr=money(case.arr_cents, case.account.currency if case.account else "USD"),
            default_commit=(timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
            drafts=Announcement.objects.filter(status=Announcement.Status.DRAFT)
            .exclude(cases=case)
            .order_by("-created_at")[:20],
        ),
    )


def _correct_themes(case: FollowUpCase, action: str, post: Any, user: User) -> str:
    """Add or remove one theme on the case's answer: a correction the model learns from."""
    theme = Theme.objects.filter(pk=form_pk(post.get("theme"))).first()
    if theme is None:
        raise FieldError("theme", "choose a theme")
    adding = action == "theme_add"
    if adding and (theme.retired_at or theme.merged_into_id):
        raise FieldError("theme", f"{theme.name} is retired")
    if case.response is None:
        raise FieldError("theme", "a health case has no answer, so no themes")
    learning.correct(
        case.response,
        add=[theme] if adding else [],
        remove=[] if adding else [theme],
        by=user,
        via="case page",
    )
    return f"Theme {theme.name} {'added' if adding else 'removed'}; the model learns from it."


def _when(value: str, field: str) -> datetime:
    parsed = parse_datetime(value.strip()) if value.strip() else None
    if parsed is None:
        raise FieldError(field, "give a date and time")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_fixed_timezone(0))
    return parsed


@login_required
def case_conversation(request: HttpRequest, pk: int) -> HttpResponse:
    """The conversation card alone, which the case page refreshes while it is live."""
    case = _case(pk)
    talk = payloads.conversation_of(case)
    return render(request, "web/_conversation.html", _base(case=case, talk=talk))


@login_required
@require_POST
def case_act(request: HttpRequest, pk: int) -> HttpResponse:
    """One action on a case, from a form on its page."""
    user: User = request.user  # type: ignore[assignment]
    if not user.can_write():
        raise PermissionDenied("viewers cannot change cases")
    post = request.POST
    action = post.get("action", "")
    with reported(request):
        case = _case(pk)
        messages.success(request, _act(case, action, post, user))
    return redirect("case", pk=pk)


@login_required
@require_POST
def erase_person(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin erases the customer of a case and every copy of their data."""
    user: User = request.user  # type: ignore[assignment]
    if not user.is_admin():
        raise PermissionDenied("admins only")
    case = _case(pk)
    label = case.person.email or case.person.external_id or f"person {case.person_id}"
    if request.POST.get("confirm") != "yes":
        messages.error(request, "confirm: tick the box to erase this person")
        return redirect("case", pk=pk)
    erased = erasure.erase(case.person)
    summary = ", ".join(f"{n} {what}" for what, n in erased.counts.items())
    messages.success(request, f"Erased {label}: {summary}. Only a hash of the address is kept.")
    return redirect("inbox")


def _act(case: FollowUpCase, action: str, post: Any, user: User) -> str:
    if action == "note":
        if not post.get("text", "").strip():
            raise FieldError("text", "write something first")
        actions.add_note(case, post["text"].strip(), user)
        return "Note added."
    if action == "call":
        outcome = post.get("outcome", "")
        if outcome not in CALL_OUTCOMES:
            raise FieldError("outcome", "choose how the call went")
        actions.log_call(case, outcome, post.get("note", "").strip(), user)
        return "Call logged."
    if action == "email":
        subject, body = post.get("subject", "").strip(), post.get("body", "").strip()
        if not subject or not body:
            raise FieldError("subject" if not subject else "body", "is required")
        if notify.customer_email(case, subject, body, Delivery.Purpose.OUTREACH, user) is None:
            raise FieldError("email", "not sent; the timeline says why")
        return "Email queued; it is sent within seconds and logged here."
    if action == "take_over":
        actions.take_over(case, user)
        return "You have the conversation now: closeloop asks nothing more."
    if action == "converse":
        actions.write_in_conversation(case, post.get("text", ""), user)
        return "Sent: on the conversation page and by email."
    if action == "gesture":
        raw = post.get("value", "").strip()
        try:
            value = float(raw) if raw else None
        except ValueError as exc:
            raise FieldError("value", "give a number, e.g. 250") from exc
        actions.give_gesture(
            case, post.get("kind", ""), value, post.get("currency", ""), post.get("note", ""), user
        )
        return "Gesture recorded."
    if action == "commit":
        case.commit(post.get("promise", ""), _when(post.get("due_at", ""), "due_at"), user)
        return "Commitment recorded."
    if action == "close":
        # What became of each open promise: a select per promise, named promise-<id>.
        promises = {
            int(key.removeprefix("promise-")): (value, post.get(f"promise-note-{key[8:]}", ""))
            for key, value in post.items()
            if key.startswith("promise-") and key[8:].isdigit() and value
        }
        actions.close(
            case,
            post.get("resolution", ""),
            post.get("reason", ""),
            post.get("note", ""),
            user,
            promises,
        )
        return "Case closed."
    if action == "reopen":
        if not post.get("reason", "").strip():
            raise FieldError("reason", "say why it is reopened")
        actions.reopen(case, post["reason"].strip(), user)
        return "Case reopened."
    if action == "assign":
        raw = post.get("owner", "")
        owner = User.objects.filter(pk=form_pk(raw), is_active=True).first()
        if raw and owner is None:
            raise FieldError("owner", "no such user")
        actions.assign(case, owner, user, post.get("why", "").strip())
        return "Reassigned."
    if action in ("theme_add", "theme_remove"):
        return _correct_themes(case, action, post, user)
    if action == "retriage":
        if not user.is_admin():
            raise PermissionDenied("only admins re-triage a case")
        return retriage.retriage(case, user)
    if action == "type":
        actions.set_type(case, post.get("detractor_type", ""), user)
        return "Detractor type recorded."
    if action == "task_done":
        task = case.tasks.filter(pk=form_pk(post.get("task"))).first()
        if task is None:
            raise FieldError("task", "no such task on this case")
        task.complete(user)
        return "Task done."
    if action == "watch":
        raw = post.get("user", "")
        watcher = User.objects.filter(pk=form_pk(raw), is_active=True).first()
        if watcher is None:
            raise FieldError("user", "no such user")
        case.watch(watcher, user)
        return f"{watcher.display_name} added; they hear of the customer's replies."
    if action == "announce":
        raw = post.get("announcement", "")
        draft = Announcement.objects.filter(
            pk=form_pk(raw), status=Announcement.Status.DRAFT
        ).first()
        if draft is None:
            raise FieldError("announcement", "no such draft announcement")
        draft.cases.add(case)
        return f"Added to “{draft.title}”; the customer hears when it is sent."
    raise FieldError("action", f"unknown action {action!r}")


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """The user's in-app notifications, newest first; opening the page marks them read."""
    user: User = request.user  # type: ignore[assignment]
    items = list(user.notifications.select_related("case").order_by("-created_at")[:100])
    unread = [n.pk for n in items if n.read_at is None]
    if unread:
        Notification.objects.filter(pk__in=unread).update(read_at=timezone.now())
    return render(request, "web/notifications.html", _base(items=items, unread=set(unread)))


@login_required
def quarantine(request: HttpRequest) -> HttpResponse:
    """Inbound mail that matched no case, and failed deliveries: what needs a person."""
    user: User = request.user  # type: ignore[assignment]
    if not user.can_manage():
        raise PermissionDenied("managers and admins only")
    if request.method == "POST":
        message = get_object_or_404(InboundMessage, pk=form_pk(request.POST.get("message")))
        with reported(request):
            if request.POST.get("action") == "dismiss":
                message.dismiss(user)
            else:
                raw = request.POST.get("case", "")
                case = FollowUpCase.objects.filter(pk=form_pk(raw)).first()
                if case is None:
                    raise FieldError("case", "no case with that number")
                actions.attach(message, case, user)
        return redirect("quarantine")
    held = InboundMessage.objects.filter(status=InboundMessage.Status.QUARANTINED).order_by(
        "-received_at"
    )[:200]
    failed = (
        Delivery.objects.filter(status=Delivery.Status.FAILED)
        .select_related("case")
        .order_by("-created_at")[:200]
    )
    return render(
        request,
        "web/quarantine.html",
        _base(
            held=held,
            failed=failed,
            outages=Outage.objects.order_by(F("resolved_at").desc(nulls_first=True), "-started_at")[
                :20
            ],
            counts=Delivery.objects.values("status").annotate(n=Count("id")).order_by("status"),
        ),
    )
