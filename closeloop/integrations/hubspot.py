"""HubSpot sync (docs/integrations.md, "HubSpot"), through the official
`hubspot-api-client`, with a private app's access token (HUBSPOT_ACCESS_TOKEN).

Each run (the worker, every HUBSPOT_SYNC_MINUTES, or Settings → Integrations → HubSpot
→ Sync now) does two things and keeps what happened on a HubSpotSync row:

Pull. Every company, page by page, with its owner (`hubspot_owner_id`, read through the
owners API to an email), ARR (HUBSPOT_ARR_PROPERTY) and tier (HUBSPOT_TIER_PROPERTY):
- a company is matched to an account by the id kept from an earlier run
  (`properties.hubspot_company_id`), by the account's external id, by its domain (an
  account's `properties.domain`, or its people's email domain), or by name;
- a matched account takes the owner (when a closeloop user has that email), the ARR
  and the tier, when they differ; an unmatched company whose lifecycle stage is
  `customer` becomes an account; other unmatched companies (leads, prospects) are
  counted and left alone;
- a bad value (an ARR that is no number, an owner with no closeloop user) is an error
  of the run naming the company and the property; the rest of the company still syncs.

Push. On every matched company, four properties in the group "closeloop" (created on
first use): `closeloop_nps` (the NPS of its people's latest answers in 365 days),
`closeloop_latest_score`, `closeloop_case_status` (the open detractor or health case's
status, else "none") and `closeloop_last_answer_at`; batch updates of 100. And a note
on the company for each closed case and each finished follow-up conversation, once
(HubSpotNote), with what the customer said and what became of it; only those of
the last 90 days, so connecting an install with years of cases is no flood of notes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.conf import settings
from django.db.models import F, Max, OuterRef, Q, Subquery
from django.utils import timezone

from closeloop.core import nps
from closeloop.loop.models import Conversation, FollowUpCase, open_filter
from closeloop.surveys.models import Account, Person, Response
from closeloop.team.models import User

from .models import HubSpotNote, HubSpotSync

log = logging.getLogger("closeloop.integrations")

GROUP = "closeloop"
PROPERTIES = {
    "closeloop_nps": ("NPS (closeloop)", "number", "number"),
    "closeloop_latest_score": ("Latest NPS answer (closeloop)", "number", "number"),
    "closeloop_case_status": ("Follow-up case (closeloop)", "string", "text"),
    "closeloop_last_answer_at": ("Last NPS answer (closeloop)", "datetime", "date"),
}
LINK = "hubspot_company_id"
NOTE_TO_COMPANY = 190  # HubSpot's association type id for note → company
BATCH = 100
PAGE = 100
NPS_WINDOW = timedelta(days=365)
NOTES_SINCE = timedelta(days=90)  # older cases get no note, so a first sync is no flood
FREE_MAIL = {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com"}


def configured() -> bool:
    return bool(settings.HUBSPOT_ACCESS_TOKEN)


def client() -> Any:
    from hubspot import HubSpot
    from urllib3.util.retry import Retry

    return HubSpot(
        access_token=settings.HUBSPOT_ACCESS_TOKEN,
        host=settings.HUBSPOT_API_URL,
        retry=Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504)),
    )


def _pages(fetch: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    after = None
    while True:
        page = fetch(limit=PAGE, after=after, **kwargs)
        yield from page.results
        nxt = page.paging.next if page.paging is not None else None
        if nxt is None or not nxt.after:
            return
        after = nxt.after


def api_error(error: Exception) -> str:
    """HubSpot's message from an ApiException body, else the exception."""
    body = getattr(error, "body", None)
    status = getattr(error, "status", None)
    try:
        message = json.loads(body)["message"] if body else str(error)
    except (ValueError, KeyError, TypeError):
        message = str(body or error)
    return f"HTTP {status}: {message}" if status else message


@dataclass
class Matcher:
    """Finds the account of a company (see the module's docstring for the order)."""

    linked: dict[str, int]
    external: dict[str, int]
    domains: dict[str, int]
    names: dict[str, int]

    @classmethod
    def load(cls) -> Matcher:
        linked: dict[str, int] = {}
        external: dict[str, int] = {}
        domains: dict[str, int] = {}
        names: dict[str, int] = {}
        for pk, ext, name, props in Account.objects.values_list(
            "pk", "external_id", "name", "properties"
        ):
            if props and props.get(LINK):
                linked[str(props[LINK])] = pk
            if ext:
                external[ext] = pk
            if props and isinstance(props.get("domain"), str):
                domains.setdefault(props["domain"].lower().strip(), pk)
            names.setdefault(name.lower().strip(), pk)
        for email, account_id in Person.objects.filter(account__isnull=False).values_list(
            "email", "account_id"
        ):
            domain = (email or "").rpartition("@")[2].lower()
            if domain and domain not in FREE_MAIL:
                domains.setdefault(domain, account_id)
        return cls(linked, external, domains, names)

    def find(self, company_id: str, props: dict[str, Any]) -> int | None:
        domain = (props.get("domain") or "").lower().strip()
        name = (props.get("name") or "").lower().strip()
        return (
            self.linked.get(company_id)
            or self.external.get(company_id)
            or (self.domains.get(domain) if domain else None)
            or (self.names.get(name) if name else None)
        )


def _arr_cents(value: Any) -> int:
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if amount < 0 or not amount.is_finite():
        raise ValueError(f"{value!r} is not an amount")
    return int(amount * 100)


def pull(api: Any, run: HubSpotSync) -> dict[int, str]:
    """Companies into accounts; {account pk: company id} of every matched company."""
    arr_key, tier_key = settings.HUBSPOT_ARR_PROPERTY, settings.HUBSPOT_TIER_PROPERTY
    owners = {
        str(o.id): (o.email or "").lower()
        for o in _pages(api.crm.owners.owners_api.get_page, archived=False)
    }
    users = {u.email.lower(): u for u in User.objects.filter(is_active=True).exclude(email="")}
    matcher = Matcher.load()
    wanted = ["name", "domain", "hubspot_owner_id", "lifecyclestage", arr_key, tier_key]
    links: dict[int, str] = {}
    for company in _pages(api.crm.companies.basic_api.get_page, properties=wanted):
        run.companies += 1
        props = company.properties or {}
        found = matcher.find(str(company.id), props)
        if found is None and props.get("lifecyclestage") != "customer":
            run.skipped += 1
            continue
        account = (
            Account.objects.filter(pk=found).first()
            if found is not None
            else Account(name=(props.get("name") or f"HubSpot company {company.id}")[:200])
        )
        if account is None:
            continue
        created = account.pk is None
        changed = _apply(account, str(company.id), props, owners, users, run)
        if created or changed:
            account.save()
            run.created += created
            run.updated += not created and changed
        links[account.pk] = str(company.id)
    return links


def _apply(
    account: Account,
    company_id: str,
    props: dict[str, Any],
    owners: dict[str, str],
    users: dict[str, User],
    run: HubSpotSync,
) -> bool:
    """Set the account from the company; True when anything changed."""
    where = f"company {company_id} ({props.get('name') or 'no name'})"
    before = (account.owner_id, account.arr_cents, account.tier, dict(account.properties or {}))
    account.properties = {**(account.properties or {}), LINK: company_id}
    owner_id = props.get("hubspot_owner_id")
    if owner_id:
        email = owners.get(str(owner_id), "")
        user = users.get(email) if email else None
        if user is None:
            run.error(
                f"{where}: hubspot_owner_id {owner_id} ({email or 'unknown owner'}) "
                "has no closeloop user with that email"
            )
        else:
            account.owner = user
    arr = props.get(settings.HUBSPOT_ARR_PROPERTY)
    if arr not in (None, ""):
        try:
            account.arr_cents = _arr_cents(arr)
        except ValueError as exc:
            run.error(f"{where}: {settings.HUBSPOT_ARR_PROPERTY}: {exc}")
    tier = (props.get(settings.HUBSPOT_TIER_PROPERTY) or "").strip()
    if tier:
        account.tier = tier[:40]
    after = (account.owner_id, account.arr_cents, account.tier, account.properties)
    return before != after


def ensure_properties(api: Any) -> None:
    """The "closeloop" group and its properties on companies, created when missing."""
    from hubspot.crm.properties import ApiException, PropertyCreate, PropertyGroupCreate

    def absent(read: Callable[[], Any]) -> bool:
        """HubSpot answers 404 for it (any other error stops the run)."""
        try:
            read()
        except ApiException as exc:
            if exc.status != 404:
                raise
            return True
        return False

    groups = api.crm.properties.groups_api
    if absent(lambda: groups.get_by_name(object_type="companies", group_name=GROUP)):
        groups.create(
            object_type="companies",
            property_group_create=PropertyGroupCreate(name=GROUP, label="closeloop"),
        )
    core = api.crm.properties.core_api
    for name, (label, kind, field) in PROPERTIES.items():
        if absent(partial(core.get_by_name, object_type="companies", property_name=name)):
            core.create(
                object_type="companies",
                property_create=PropertyCreate(
                    name=name, label=label, type=kind, field_type=field, group_name=GROUP
                ),
            )


def values(links: dict[int, str], now: datetime) -> dict[str, dict[str, str]]:
    """The properties to write on each linked company."""
    latest = Response.objects.filter(person_id=OuterRef("person_id"), created_at__lte=now)
    answers = (
        Response.objects.filter(
            account_id__in=list(links), created_at__gte=now - NPS_WINDOW, created_at__lte=now
        )
        .annotate(newest=Subquery(latest.order_by("-created_at", "-id").values("id")[:1]))
        .filter(id=F("newest"))
        .values_list("account_id", "score", "created_at")
    )
    by_account: dict[int, list[tuple[int, datetime]]] = {}
    for account_id, score, at in answers:
        by_account.setdefault(account_id, []).append((score, at))
    status = dict(
        FollowUpCase.objects.filter(
            open_filter(),
            account_id__in=list(links),
            loop__in=[FollowUpCase.Loop.DETRACTOR, FollowUpCase.Loop.HEALTH],
        )
        .order_by("account_id", "-created_at")
        .values_list("account_id", "status")
    )
    out = {}
    for account_id, company_id in links.items():
        found = by_account.get(account_id, [])
        props = {"closeloop_case_status": status.get(account_id, "none")}
        if found:
            scores = [s for s, _ in found]
            kinds = [nps.category(s) for s in scores]
            props["closeloop_nps"] = str(
                round(
                    nps.nps(
                        kinds.count(nps.Category.PROMOTER),
                        kinds.count(nps.Category.PASSIVE),
                        kinds.count(nps.Category.DETRACTOR),
                    )
                )
            )
            score, at = max(found, key=lambda f: f[1])
            props["closeloop_latest_score"] = str(score)
            props["closeloop_last_answer_at"] = at.date().isoformat()
        out[company_id] = props
    return out


def push(api: Any, links: dict[int, str], run: HubSpotSync, now: datetime) -> None:
    from hubspot.crm.companies import (
        ApiException,
        BatchInputSimplePublicObjectBatchInput,
        SimplePublicObjectBatchInput,
    )

    ensure_properties(api)
    found = list(values(links, now).items())
    for start in range(0, len(found), BATCH):
        chunk = found[start : start + BATCH]
        inputs = [SimplePublicObjectBatchInput(id=cid, properties=props) for cid, props in chunk]
        try:
            answer = api.crm.companies.batch_api.update(
                batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
                    inputs=inputs
                )
            )
        except ApiException as exc:
            run.error(f"updating companies {chunk[0][0]}…{chunk[-1][0]}: {api_error(exc)}")
            continue
        run.pushed += len(answer.results or [])
        for problem in getattr(answer, "errors", None) or []:
            ids = ", ".join((problem.context or {}).get("ids", []))
            run.error(f"updating company {ids}: {problem.message}")
    _notes(api, links, run, now)


def _note_text(case: FollowUpCase, kind: str) -> str:
    who = case.person.name or case.person.email or "the customer"
    opened = (
        f"{case.score}/10 from {who}"
        if case.score is not None
        else f"account health fell ({case.score_label}), contact {who}"
    )
    lines = [f"<p><strong>closeloop follow-up, case #{case.pk}</strong>: {opened}.</p>"]
    if case.response is not None and case.response.comment.strip():
        lines.append(f"<p>They said: “{_escape(case.response.comment.strip())}”</p>")
    if kind == HubSpotNote.Kind.CONVERSATION:
        summary = case.conversation.summary or {}
        facts = [
            f"themes {', '.join(summary.get('themes', [])) or '—'}",
            f"type {summary.get('detractor_type') or 'unknown'}",
            f"churn intent {'yes' if summary.get('churn_intent') else 'no'}",
        ]
        if summary.get("competitor"):
            facts.append(f"competitor {summary['competitor']}")
        lines.append(f"<p>Follow-up conversation: {_escape('; '.join(facts))}.</p>")
    else:
        owner = case.owner.display_name if case.owner else "nobody"
        lines.append(
            f"<p>Closed ({_escape(case.get_resolution_display() or 'closed')}) by {_escape(owner)}"
            + (f": {_escape(case.close_note)}" if case.close_note else "")
            + "</p>"
        )
    return "".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _notes(api: Any, links: dict[int, str], run: HubSpotSync, now: datetime) -> None:
    from hubspot.crm.objects.notes import (
        ApiException,
        AssociationSpec,
        PublicAssociationsForObject,
        PublicObjectId,
        SimplePublicObjectInputForCreate,
    )

    done = set(HubSpotNote.objects.values_list("case_id", "kind"))
    since = now - NOTES_SINCE
    closed = FollowUpCase.objects.filter(
        account_id__in=list(links), status=FollowUpCase.Status.CLOSED, closed_at__gt=since
    ).exclude(resolution=FollowUpCase.Resolution.SUPERSEDED)
    talked = FollowUpCase.objects.filter(
        account_id__in=list(links),
        conversation__status__in=[Conversation.Status.COMPLETED, Conversation.Status.STOPPED],
        conversation__ended_at__gt=since,
    )
    due = [
        (c, HubSpotNote.Kind.CLOSED) for c in closed.select_related("person", "owner", "response")
    ]
    due += [
        (c, HubSpotNote.Kind.CONVERSATION)
        for c in talked.select_related("person", "owner", "response", "conversation")
    ]
    for case, kind in due:
        if (case.pk, kind) in done or case.account_id is None:
            continue
        when = (
            case.closed_at if kind == HubSpotNote.Kind.CLOSED else case.conversation.ended_at
        ) or now
        body = SimplePublicObjectInputForCreate(
            properties={"hs_timestamp": when.isoformat(), "hs_note_body": _note_text(case, kind)},
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id=links[case.account_id]),
                    types=[
                        AssociationSpec(
                            association_category="HUBSPOT_DEFINED",
                            association_type_id=NOTE_TO_COMPANY,
                        )
                    ],
                )
            ],
        )
        try:
            note = api.crm.objects.notes.basic_api.create(
                simple_public_object_input_for_create=body
            )
        except ApiException as exc:
            run.error(f"note for case #{case.pk}: {api_error(exc)}")
            continue
        HubSpotNote.objects.create(case=case, kind=kind, note_id=str(note.id))
        run.notes += 1


def sync(run: HubSpotSync) -> None:
    """Pull then push; a failure that stops the run is its error, kept on the row."""
    now = timezone.now()
    api = client()
    try:
        links = pull(api, run)
        push(api, links, run, now)
    except Exception as exc:  # the run's outcome, shown on the sync page
        log.exception("HubSpot sync %s stopped", run.pk)
        run.error(f"stopped: {api_error(exc)}")
        run.status = HubSpotSync.Status.FAILED
    else:
        run.status = HubSpotSync.Status.DONE if not run.errors else HubSpotSync.Status.PARTIAL
    run.finished_at = timezone.now()
    run.save()


def request(user: Any = None) -> HubSpotSync:
    """Ask the worker for a run (the waiting one, if any)."""
    waiting = HubSpotSync.objects.filter(started_at__isnull=True).order_by("pk").first()
    return waiting or HubSpotSync.objects.create(requested_by=user)


def handle_hubspot_sync() -> bool:
    """Run the waiting sync, asking for one when the last is HUBSPOT_SYNC_MINUTES old.
    The update that sets `started_at` is the claim among workers."""
    if not configured():
        return False
    now = timezone.now()
    last = HubSpotSync.objects.aggregate(last=Max("requested_at"))["last"]
    if last is None or last <= now - timedelta(minutes=settings.HUBSPOT_SYNC_MINUTES):
        request()
    waiting = HubSpotSync.objects.filter(started_at__isnull=True).order_by("pk").first()
    if waiting is None:
        return False
    if not HubSpotSync.objects.filter(pk=waiting.pk, started_at__isnull=True).update(
        started_at=now, status=HubSpotSync.Status.RUNNING
    ):
        return True
    waiting.refresh_from_db()
    sync(waiting)
    return True


def waiting_or_last() -> tuple[HubSpotSync | None, HubSpotSync | None]:
    """(the run waiting or running, the last finished run) for the page."""
    pending = HubSpotSync.objects.filter(finished_at__isnull=True).order_by("pk").first()
    last = HubSpotSync.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    return pending, last


def recent(n: int = 10) -> list[HubSpotSync]:
    return list(
        HubSpotSync.objects.filter(Q(finished_at__isnull=False)).order_by("-finished_at")[:n]
    )
