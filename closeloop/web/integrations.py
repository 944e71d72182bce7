"""Settings → Integrations: which senders are connected, what they sent lately, and the
events waiting for their customer to be mapped to an account (docs/integrations.md)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max, Min
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from closeloop.core.errors import FieldError
from closeloop.integrations import hubspot, segment, stripe_events, tickets
from closeloop.integrations.models import (
    AccountSignal,
    IntegrationEvent,
    Ticket,
    UsageEvent,
    UsageIdentity,
)
from closeloop.loop.models import ExitInterview
from closeloop.surveys.models import Account

from .settings_pages import _admin
from .views import _base, reported


@login_required
def integrations(request: HttpRequest) -> HttpResponse:
    _admin(request)
    events = IntegrationEvent.objects.select_related("account")
    waiting = (
        events.filter(status=IntegrationEvent.Status.UNMATCHED)
        .values("source", "customer_ref", "email")
        .annotate(n=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
        .order_by("-last")[:100]
    )
    return render(
        request,
        "web/integrations.html",
        _base(
            stripe_on=bool(settings.STRIPE_WEBHOOK_SECRET),
            segment_on=bool(settings.SEGMENT_WRITE_KEY or settings.SEGMENT_SHARED_SECRET),
            usage_counts=_usage_counts(),
            usage_waiting=_usage_waiting(),
            desks_on={
                "Zendesk": bool(settings.ZENDESK_WEBHOOK_SECRET),
                "Intercom": bool(settings.INTERCOM_CLIENT_SECRET),
            },
            ticket_counts=dict(
                Ticket.objects.values_list("source")
                .annotate(n=Count("id"))
                .values_list("source", "n")
            ),
            tickets_waiting=list(
                Ticket.objects.filter(account__isnull=True)
                .values("source", "org_ref", "email")
                .annotate(n=Count("id"), last=Max("updated_at"))
                .order_by("-last")[:100]
            ),
            hubspot_on=hubspot.configured(),
            hubspot_last=hubspot.waiting_or_last()[1],
            site_url=settings.SITE_URL,
            counts=dict(
                events.values_list("status").annotate(n=Count("id")).values_list("status", "n")
            ),
            recent=events.order_by("-received_at")[:50],
            waiting=list(waiting),
            signals=AccountSignal.objects.select_related("account").order_by("-at")[:30],
            accounts=Account.objects.filter(churned_at__isnull=True).order_by("name")[:2000],
            exits=ExitInterview.objects.select_related(
                "account", "person", "response", "change"
            ).order_by("-created_at")[:30],
            tab="integrations",
        ),
    )


def _usage_counts() -> dict[str, int]:
    users = UsageIdentity.objects.filter(kind=UsageIdentity.Kind.USER)
    return {
        "events received": UsageEvent.objects.count(),
        "users matched": users.filter(account__isnull=False).count(),
        "users waiting": users.filter(account__isnull=True).count(),
    }


def _usage_waiting() -> list[dict[str, object]]:
    """Segment groups, and users outside any group, not matched to an account yet: the
    most recently seen first, with how many users and events wait on each."""
    users = UsageIdentity.objects.filter(kind=UsageIdentity.Kind.USER, account__isnull=True)
    groups = {
        g.ref: g
        for g in UsageIdentity.objects.filter(
            kind=UsageIdentity.Kind.GROUP, account__isnull=True
        ).order_by("-last_seen_at")[:100]
    }
    waiting: list[dict[str, object]] = []
    for row in (
        users.exclude(group_ref="")
        .filter(group_ref__in=list(groups))
        .values("group_ref")
        .annotate(n=Count("id", distinct=True), events_n=Count("events"), last=Max("last_seen_at"))
    ):
        group = groups[str(row["group_ref"])]
        name = group.traits.get("name") if isinstance(group.traits, dict) else None
        waiting.append(
            {
                "kind": "group",
                "ref": group.ref,
                "name": name or "",
                "n": row["n"],
                "events": row["events_n"],
                "last": row["last"],
            }
        )
    for user in (
        users.filter(group_ref="")
        .annotate(events_n=Count("events"))
        .order_by("-last_seen_at")[:100]
    ):
        waiting.append(
            {
                "kind": "user",
                "ref": user.ref,
                "name": user.traits.get("email", "") if isinstance(user.traits, dict) else "",
                "n": 1,
                "events": user.events_n,
                "last": user.last_seen_at,
            }
        )
    return sorted(waiting, key=lambda w: w["last"], reverse=True)  # type: ignore[arg-type,return-value]


def _account_named(ref: str) -> Account:
    account = Account.objects.filter(external_id=ref).first() if ref else None
    if account is None and ref.isdigit():
        account = Account.objects.filter(pk=int(ref)).first()
    if account is None:
        raise FieldError("account", "choose an account")
    return account


@login_required
@require_POST
def map_usage(request: HttpRequest) -> HttpResponse:
    """Say which account a Segment group (or a user outside any group) is."""
    _admin(request)
    kind, ref = request.POST.get("kind", ""), request.POST.get("ref", "").strip()
    with reported(request):
        account = _account_named(request.POST.get("account", "").strip())
        users = segment.map_identity(kind, ref, account)
        plural = "s" if users != 1 else ""
        messages.success(request, f"{ref} is {account.name}: {users} user{plural} now count.")
    return redirect("integrations")


@login_required
@require_POST
def map_tickets(request: HttpRequest) -> HttpResponse:
    """Say which account a desk's organisation (or requester email) is."""
    _admin(request)
    source = request.POST.get("source", "")
    customer = request.POST.get("customer", "").strip()
    with reported(request):
        if source not in {s.value for s in IntegrationEvent.Source}:
            raise FieldError("source", "a known source")
        account = _account_named(request.POST.get("account", "").strip())
        done = tickets.map_customer(source, customer, account)
        plural = "s" if done != 1 else ""
        messages.success(request, f"{customer} is {account.name}: {done} ticket{plural} placed.")
    return redirect("integrations")


@login_required
def hubspot_page(request: HttpRequest) -> HttpResponse:
    """The HubSpot sync: the run waiting, the last runs with their errors; Sync now (POST)."""
    user = _admin(request)
    if request.method == "POST":
        if not hubspot.configured():
            messages.error(
                request, "HUBSPOT_ACCESS_TOKEN is not set: there is nothing to sync with"
            )
        else:
            hubspot.request(user)
            messages.success(request, "Sync asked for: the worker runs it within a minute.")
        return redirect("integrations-hubspot")
    pending, last = hubspot.waiting_or_last()
    return render(
        request,
        "web/hubspot.html",
        _base(
            configured=hubspot.configured(),
            pending=pending,
            last=last,
            runs=hubspot.recent(),
            arr_property=settings.HUBSPOT_ARR_PROPERTY,
            tier_property=settings.HUBSPOT_TIER_PROPERTY,
            every=settings.HUBSPOT_SYNC_MINUTES,
            properties=hubspot.PROPERTIES,
            tab="integrations",
        ),
    )


@login_required
@require_POST
def map_customer(request: HttpRequest) -> HttpResponse:
    """Say which account a sender's customer is; its waiting events are applied."""
    _admin(request)
    customer = request.POST.get("customer", "").strip()
    with reported(request):
        account = _account_named(request.POST.get("account", "").strip())
        done = stripe_events.map_customer(customer, account)
        plural = "s" if done != 1 else ""
        messages.success(
            request, f"{customer} is {account.name}: {done} waiting event{plural} applied."
        )
    return redirect("integrations")
