"""Accounts: the list (health, ARR, owner; sorted and filtered) and one account's page,
where its health, usage, tickets, billing, history, people, cases and answers meet."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from closeloop.insights import health
from closeloop.integrations import tickets, usage
from closeloop.integrations.models import AccountSignal, HubSpotNote
from closeloop.loop.models import FollowUpCase, open_filter
from closeloop.surveys.models import Account, Response
from closeloop.team.models import User

from .views import _base

LIST_LIMIT = 300
SORTS = {
    "health": lambda h: (h.score, -h.account.arr_cents, h.account.name.lower()),
    "arr": lambda h: (-h.account.arr_cents, h.score, h.account.name.lower()),
    "name": lambda h: (h.account.name.lower(), h.account.pk),
}


@login_required
def accounts_page(request: HttpRequest) -> HttpResponse:
    """Live accounts with their health; ?sort=health|arr|name, ?band=, ?tier=, ?owner=
    (a user's id), ?q= (in the name). A bad value is named and not applied."""
    get = request.GET
    errors = []
    sort = get.get("sort", "health")
    if sort not in SORTS:
        errors.append("sort: must be one of " + ", ".join(SORTS))
        sort = "health"
    band = get.get("band", "")
    if band and band not in health.BAND_NAMES:
        errors.append("band: must be one of " + ", ".join(health.BAND_NAMES))
        band = ""
    owner = get.get("owner", "")
    if owner and not owner.isdigit():
        errors.append("owner: must be a user's id")
        owner = ""
    tier, q = get.get("tier", "").strip(), get.get("q", "").strip()[:100]
    qs = Account.objects.all()
    if tier:
        qs = qs.filter(tier__iexact=tier)
    if owner:
        qs = qs.filter(owner_id=int(owner))
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(external_id__icontains=q))
    found = [h for h in health.scores(qs) if not band or h.band == band]
    found.sort(key=SORTS[sort])
    shown = found[:LIST_LIMIT]
    ids = [h.account.pk for h in shown]
    open_cases = dict(
        FollowUpCase.objects.filter(open_filter(), account_id__in=ids)
        .values_list("account_id")
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    last_answers = dict(
        Response.objects.filter(account_id__in=ids)
        .values_list("account_id")
        .annotate(last=Max("created_at"))
        .values_list("account_id", "last")
    )
    return render(
        request,
        "web/accounts.html",
        _base(
            rows=[
                (h, open_cases.get(h.account.pk, 0), last_answers.get(h.account.pk)) for h in shown
            ],
            shown=len(found),
            limit=LIST_LIMIT,
            sort=sort,
            band=band,
            tier=tier,
            owner=owner,
            q=q,
            bands=health.BAND_NAMES,
            tiers=sorted(
                {t for t in Account.objects.exclude(tier="").values_list("tier", flat=True)}
            ),
            owners=User.objects.filter(owned_accounts__isnull=False)
            .distinct()
            .order_by("first_name"),
            churned=Account.objects.filter(churned_at__isnull=False).count(),
            errors=errors,
        ),
    )


@login_required
def account_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One account: health and why, usage, tickets, billing, ARR history, people, cases
    and the latest answers."""
    account = get_object_or_404(Account.objects.select_related("owner", "executive_sponsor"), pk=pk)
    people = account.people.annotate(
        answers=Count("responses"), last=Max("responses__created_at")
    ).order_by("-last", "email")[:50]
    return render(
        request,
        "web/account.html",
        _base(
            account=account,
            health=health.of(account),
            usage=usage.of(account),
            load=tickets.of(account),
            signals=AccountSignal.objects.filter(account=account).order_by("-at")[:20],
            changes=account.changes.order_by("-at", "-id")[:20],
            people=people,
            cases=FollowUpCase.objects.filter(account=account)
            .select_related("person", "owner")
            .order_by("-created_at")[:30],
            open_cases=FollowUpCase.objects.filter(open_filter(), account=account).count(),
            answers=Response.objects.filter(account=account)
            .select_related("person")
            .order_by("-created_at")[:20],
            hubspot_notes=HubSpotNote.objects.filter(case__account=account).count(),
        ),
    )
