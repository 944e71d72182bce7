"""Admin pages for the follow-up: triage policy, routing and teams, channels, templates.

Each form is validated by the same schema as its API endpoint (the policy by
`PolicyConfig`, channels/teams/rules by the API's request schemas) and saved
by the same function, so the page and the API cannot drift apart.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from pydantic import ValidationError

from closeloop.core.errors import FieldError
from closeloop.core.nps import Band
from closeloop.core.periods import today
from closeloop.delivery.models import EVENTS, Channel
from closeloop.loop import protocols
from closeloop.loop.configuration import (
    ChannelIn,
    RuleIn,
    TeamIn,
    add_channel,
    add_rule,
    save_team,
    save_template,
)
from closeloop.loop.models import FollowUpCase, OutreachTemplate, RoutingRule, TriagePolicy
from closeloop.loop.outreach import DEFAULTS, VARIABLES, lint, template_for
from closeloop.loop.policy import DEFAULT_PLAYBOOKS, DETRACTOR_TYPES, Action, PolicyConfig
from closeloop.team.models import Team, User
from closeloop.themes import discovery, learning, taxonomy
from closeloop.themes.models import (
    Theme,
    ThemeCandidate,
    ThemeDiscovery,
    ThemeExample,
    ThemeTraining,
)

from .views import _base, field_errors, form_pk, reported

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _admin(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not user.is_admin():
        raise PermissionDenied("admins only")
    return user


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.replace(",", " ").split() if w.strip()]


def policy_from_post(post: QueryDict) -> PolicyConfig:
    """The policy form as a PolicyConfig; ValidationError names the field at fault."""
    arr = post.get("arr_at_least", "").strip()
    sponsor_arr = post.get("sponsor_arr_at_least", "").strip()
    data: dict[str, Any] = {
        "high_value": {
            "tiers": _words(post.get("tiers", "")),
            "arr_at_least": arr.replace(",", "") if arr else None,
        },
        "executive_sponsor": {
            "tiers": _words(post.get("sponsor_tiers", "")),
            "arr_at_least": sponsor_arr.replace(",", "") if sponsor_arr else None,
        },
        "matrix": {
            band.value: {
                "high_value": post.get(f"matrix.{band.value}.high_value", ""),
                "standard": post.get(f"matrix.{band.value}.standard", ""),
            }
            for band in Band
        },
        "passive_action": post.get("passive_action") or None,
        "promoter_action": post.get("promoter_action") or None,
        "playbooks": {s: _lines(post.get(f"playbook.{s}", "")) for s in DEFAULT_PLAYBOOKS},
        "sla_hours": {
            "default": post.get("sla_default", ""),
            "severe_high_value": post.get("sla_severe_high_value", ""),
        },
        "escalation": {"second_level_after_hours": post.get("second_level_after_hours", "")},
        "business_hours": {
            "enabled": post.get("bh_enabled") == "on",
            "start": post.get("bh_start", ""),
            "end": post.get("bh_end", ""),
            "weekdays": [int(d) for d in post.getlist("bh_weekdays") if d.isdigit()],
        },
        "fresh_within_hours": post.get("fresh_within_hours", ""),
        "follow_up_survey_days": post.get("follow_up_survey_days", ""),
        "type_playbooks": {k: _lines(post.get(f"type_playbook.{k}", "")) for k in DETRACTOR_TYPES},
        "type_sla_hours": {
            k: post.get(f"type_sla.{k}", "").strip()
            for k in DETRACTOR_TYPES
            if post.get(f"type_sla.{k}", "").strip()
        },
        "acknowledge_personal": post.get("acknowledge_personal") == "on",
        "health_cases": {
            "enabled": post.get("hc_enabled") == "on",
            "fall_points": post.get("hc_fall_points", ""),
            "days": post.get("hc_days", ""),
            "below": post.get("hc_below", ""),
            "action": post.get("hc_action", ""),
            "sla_hours": post.get("hc_sla_hours", ""),
            "quiet_days": post.get("hc_quiet_days", ""),
            "playbook": _lines(post.get("hc_playbook", "")),
        },
        "max_open_personal_cases": post.get("max_open_personal_cases", "").strip() or None,
    }
    return PolicyConfig.model_validate(data)


@login_required
def follow_up_settings(request: HttpRequest) -> HttpResponse:
    """The triage policy as a form; saving makes a new version (cases keep theirs)."""
    user = _admin(request)
    policy = TriagePolicy.current()
    rules = policy.rules
    status = 200
    if request.method == "POST":
        try:
            rules = policy_from_post(request.POST)
        except ValidationError as exc:
            for problem in field_errors(exc):
                messages.error(request, problem)
            status = 422
        else:
            saved = TriagePolicy.save_new_version(rules, user)
            messages.success(request, f"Saved as policy version {saved.version}.")
            return redirect("settings-follow-up")
    actions = [(a.value, a.label) for a in Action if a != Action.AUTOMATED_THANKS_REVIEW]
    context = _base(
        policy=policy,
        rules=rules,
        bands=[(b.value, rules.matrix[b]) for b in Band if b in rules.matrix],
        actions=actions,
        loop_actions=[(a.value, a.label) for a in Action],
        personal_actions=[(a.value, a.label) for a in Action if not a.automated],
        playbooks=[(s, "\n".join(rules.playbooks.get(s, []))) for s in DEFAULT_PLAYBOOKS],
        health_playbook="\n".join(rules.health_cases.playbook),
        type_playbooks=[
            (
                k,
                FollowUpCase.DetractorType(k).label,
                "\n".join(rules.type_playbooks.get(k, [])),
                rules.type_sla_hours.get(k),
            )
            for k in DETRACTOR_TYPES
        ],
        weekdays=list(enumerate(WEEKDAYS)),
        versions=TriagePolicy.objects.select_related("created_by").order_by("-version")[:10],
        tab="policy",
    )
    return render(request, "web/settings_policy.html", context, status=status)


@login_required
def routing_settings(request: HttpRequest) -> HttpResponse:
    """Routing rules (tier/property → team, round-robin) and the teams they name."""
    _admin(request)
    if request.method == "POST":
        post = request.POST
        action = post.get("action", "")
        with reported(request):
            if action == "add_rule":
                add_rule(
                    RuleIn(
                        name=post.get("name", "").strip(),
                        position=post.get("position", "0") or 0,  # type: ignore[arg-type]
                        tiers=_words(post.get("tiers", "")),
                        property_key=post.get("property_key", "").strip(),
                        property_value=post.get("property_value", "").strip(),
                        team=post.get("team", ""),
                    )
                )
                messages.success(request, "Rule added.")
            elif action == "delete_rule":
                get_object_or_404(RoutingRule, pk=form_pk(post.get("rule"))).delete()
                messages.success(request, "Rule removed.")
            elif action == "save_team":
                team = save_team(
                    TeamIn(name=post.get("name", "").strip(), members=post.getlist("members"))
                )
                messages.success(request, f"Team {team.name} saved.")
            else:
                raise FieldError("action", f"unknown action {action!r}")
        return redirect("settings-routing")
    return render(
        request,
        "web/settings_routing.html",
        _base(
            rules=RoutingRule.objects.select_related("team"),
            teams=Team.objects.prefetch_related("members").order_by("name"),
            users=User.objects.filter(is_active=True).order_by("first_name", "username"),
            tab="routing",
        ),
    )


@login_required
def channel_settings(request: HttpRequest) -> HttpResponse:
    """Where alerts go: Slack, signed webhooks, email addresses; with their filters."""
    _admin(request)
    if request.method == "POST":
        post = request.POST
        with reported(request):
            if post.get("action") == "delete":
                get_object_or_404(Channel, pk=form_pk(post.get("channel"))).delete()
                messages.success(request, "Channel removed.")
            else:
                kind = post.get("kind", "")
                target = post.get("target", "").strip()
                # "Delighted-format webhook" is a webhook that speaks Delighted's events.
                form = "delighted" if kind == "delighted" else "closeloop"
                kind = "webhook" if kind == "delighted" else kind
                add_channel(
                    ChannelIn(
                        kind=kind,  # type: ignore[arg-type]
                        format=form,  # type: ignore[arg-type]
                        name=post.get("name", "").strip(),
                        url=target if kind != "email" else None,
                        email=target if kind == "email" else None,
                        events=post.getlist("events"),
                        bands=post.getlist("bands"),  # type: ignore[arg-type]
                        tiers=_words(post.get("tiers", "")),
                        team=post.get("team") or None,
                    )
                )
                messages.success(request, "Channel added.")
        return redirect("settings-channels")
    return render(
        request,
        "web/settings_channels.html",
        _base(
            channels=Channel.objects.select_related("team").order_by("id"),
            teams=Team.objects.order_by("name"),
            events=EVENTS,
            bands=[b.value for b in Band],
            tab="channels",
        ),
    )


@login_required
def template_settings(request: HttpRequest) -> HttpResponse:
    """Every action's first email per language: shipped default or saved, with lint findings."""
    _admin(request)
    wanted, locale = request.GET.get("action_", ""), request.GET.get("locale", "").strip()
    if wanted in {a.value for a in Action} and 2 <= len(locale) <= 16:
        return redirect("settings-template", wanted, locale)
    saved = {(t.action, t.locale): t for t in OutreachTemplate.objects.all()}
    keys = sorted({(a.value, loc) for a, loc in DEFAULTS} | set(saved))
    rows = []
    for action, locale in keys:
        draft = template_for(Action(action), locale)
        rows.append(
            {
                "action": Action(action),
                "locale": locale,
                "subject": draft.subject,
                "saved": saved.get((action, locale)),
                "findings": lint(draft.subject, draft.body, locale),
            }
        )
    return render(request, "web/settings_templates.html", _base(rows=rows, tab="templates"))


@login_required
def template_edit(request: HttpRequest, action: str, locale: str) -> HttpResponse:
    """Edit one template; an automated one that breaks the outreach rules is not saved."""
    user = _admin(request)
    if action not in {a.value for a in Action} or not 2 <= len(locale) <= 16:
        raise PermissionDenied("no such template")
    act = Action(action)
    draft = template_for(act, locale)
    subject, body = draft.subject, draft.body
    findings = lint(subject, body, locale)
    status = 200
    if request.method == "POST":
        subject = request.POST.get("subject", "").strip()
        body = request.POST.get("body", "").replace("\r\n", "\n").strip()
        findings = []
        if not subject or not body:
            messages.error(request, "subject and body are both required")
            status = 422
        else:
            try:
                save_template(act, locale, subject, body, user)
            except FieldError:
                findings = lint(subject, body, locale)
                messages.error(request, "Not saved: an automated email must pass every rule below.")
                status = 422
            else:
                messages.success(request, "Template saved.")
                return redirect("settings-template", act.value, locale)
    return render(
        request,
        "web/settings_template.html",
        _base(
            action=act,
            locale=locale,
            subject=subject,
            body=body,
            findings=findings,
            variables=VARIABLES,
            tab="templates",
        ),
        status=status,
    )


def _theme(post: QueryDict, name: str = "theme") -> Theme:
    theme = Theme.objects.filter(pk=form_pk(post.get(name))).first()
    if theme is None:
        raise FieldError(name, "choose a theme")
    return theme


def _owner_from(post: QueryDict) -> User | None:
    raw = post.get("owner", "")
    owner = User.objects.filter(pk=form_pk(raw)).first()
    if raw and owner is None:
        raise FieldError("owner", "no such user")
    return owner


def _theme_action(request: HttpRequest, post: QueryDict) -> str:
    """One change to the taxonomy or the model, from a form on the themes page."""
    user: User = request.user  # type: ignore[assignment]
    action = post.get("action", "")
    if action == "add":
        theme = taxonomy.add_theme(
            post.get("name", ""),
            slug=post.get("slug", "").strip(),
            description=post.get("description", ""),
            probes=_lines(post.get("probes", "")),
            owner=_owner_from(post),
        )
        return f"Theme {theme.name} added. Tag a few answers with it, then retrain."
    if action == "edit":
        theme = taxonomy.edit_theme(
            _theme(post),
            name=post.get("name", ""),
            description=post.get("description", ""),
            probes=_lines(post.get("probes", "")),
            owner=_owner_from(post),
        )
        return f"Theme {theme.name} saved."
    if action == "protocol":
        theme = _theme(post)
        team = Team.objects.filter(pk=form_pk(post.get("team"))).first()
        if post.get("team") and team is None:
            raise FieldError("team", "no such team")
        answers = [
            {"title": title, "body": body}
            for title, body in zip(
                post.getlist("answer_title"), post.getlist("answer_body"), strict=False
            )
            if title.strip() or body.strip()
        ]
        protocols.set_sheet(
            theme,
            team=team,
            approved_answers=answers,
            next_steps=_lines(post.get("next_steps", "")),
            loop_in=post.get("loop_in", ""),
        )
        return f"Protocol sheet of {theme.name} saved."
    if action == "merge":
        source, target = _theme(post), _theme(post, "into")
        moved = taxonomy.merge(source, target)
        return f"{source.name} merged into {target.name}; {moved} answers moved."
    if action == "split":
        source = _theme(post)
        created = taxonomy.split(source, _lines(post.get("names", "")))
        names = ", ".join(t.name for t in created)
        return f"{source.name} split into {names}. Sort its answers below, then retrain."
    if action == "retire":
        return f"{taxonomy.retire(_theme(post)).name} retired; its tags stay readable."
    if action == "restore":
        return f"{taxonomy.restore(_theme(post)).name} restored."
    if action == "retrain":
        learning.request_training(user)
        return "Retraining queued; the worker runs it within a minute."
    if action == "discover":
        since = _date(post.get("since", ""), "since")
        until = _date(post.get("until", ""), "until")
        discovery.request_discovery(since, until, user)
        return "Discovery queued; the worker reads the period's unplaced comments shortly."
    if action in ("accept", "dismiss"):
        candidate = ThemeCandidate.objects.filter(pk=form_pk(post.get("candidate"))).first()
        if candidate is None:
            raise FieldError("candidate", "no such candidate")
        if action == "dismiss":
            discovery.dismiss(candidate, user)
            return f"{candidate.name} dismissed."
        theme = discovery.accept(candidate, post.get("name", ""), user, post.get("slug", ""))
        return f"Theme {theme.name} added with {candidate.size} tagged answers; retraining queued."
    raise FieldError("action", f"unknown action {action!r}")


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise FieldError(field, "give a date (YYYY-MM-DD)") from None


@login_required
def theme_settings(request: HttpRequest) -> HttpResponse:
    """The taxonomy (add, rename, merge, split, retire) and the model: its version,
    what it learned from, and retraining."""
    _admin(request)
    if request.method == "POST":
        with reported(request):
            messages.success(request, _theme_action(request, request.POST))
        return redirect("settings-themes")
    themes = list(
        Theme.objects.select_related("owner", "merged_into", "split_from", "team")
        .annotate(answers=Count("tags"), children=Count("split_into"))
        .order_by("retired_at", "name")
    )
    split_waiting = [t for t in themes if t.children and t.answers]
    blank = {"title": "", "body": ""}
    answer_slots = {  # each sheet's answers, and room for two more
        t.pk: [*t.approved_answers, blank, blank][: protocols.MAX_ANSWERS] for t in themes
    }
    return render(
        request,
        "web/settings_themes.html",
        _base(
            themes_rows=themes,
            active=[t for t in themes if t.is_active],
            split_waiting=split_waiting,
            users=User.objects.filter(is_active=True).order_by("first_name", "username"),
            teams=Team.objects.order_by("name"),
            answer_slots=answer_slots,
            version=learning.current_version(),
            trainings=ThemeTraining.objects.defer("model").select_related("requested_by")[:10],
            corrections=ThemeExample.objects.count(),
            discoveries=ThemeDiscovery.objects.select_related("requested_by")[:5],
            candidates=ThemeCandidate.objects.filter(status=ThemeCandidate.Status.OPEN)
            .select_related("discovery")
            .order_by("-discovery__requested_at", "-size")[:20],
            discover_since=today() - timedelta(days=89),
            discover_until=today(),
            tab="themes",
        ),
    )


@login_required
def theme_sort(request: HttpRequest, slug: str) -> HttpResponse:
    """Move each answer of a split theme to one of the themes it became."""
    user = _admin(request)
    source = get_object_or_404(Theme, slug=slug)
    children = list(source.split_into.order_by("name"))
    if request.method == "POST":
        choices: dict[int, Theme | None] = {}
        by_pk = {t.pk: t for t in children}
        for key in request.POST:
            value = request.POST.get(key, "")
            if key.startswith("answer-") and value:
                choices[form_pk(key.removeprefix("answer-"))] = (
                    None if value == "none" else by_pk.get(form_pk(value))
                )
        with reported(request):
            done = taxonomy.sort_split(source, choices, user, "themes page")
            messages.success(request, f"{done} answers sorted; retrain when you are done.")
        return redirect("settings-theme-sort", slug=slug)
    return render(
        request,
        "web/settings_theme_sort.html",
        _base(
            source=source,
            children=children,
            answers=taxonomy.unsorted_answers(source),
            tab="themes",
        ),
    )
