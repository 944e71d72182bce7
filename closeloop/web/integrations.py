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
from closeloop.integrations import stripe_events
from closeloop.integrations.models import AccountSignal, IntegrationEvent
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


@login_required
@require_POST
def map_customer(request: HttpRequest) -> HttpResponse:
    """Say which account a sender's customer is; its waiting events are applied."""
    _admin(request)
    customer = request.POST.get("customer", "").strip()
    with reported(request):
        ref = request.POST.get("account", "").strip()
        account = Account.objects.filter(external_id=ref).first() if ref else None
        if account is None and ref.isdigit():
            account = Account.objects.filter(pk=int(ref)).first()
        if account is None:
            raise FieldError("account", "choose an account")
        done = stripe_events.map_customer(customer, account)
        plural = "s" if done != 1 else ""
        messages.success(
            request, f"{customer} is {account.name}: {done} waiting event{plural} applied."
        )
    return redirect("integrations")
