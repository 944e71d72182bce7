"""Storing answers, people and accounts: the writes behind every source of answers.

`store_responses` upserts accounts and people, freezes their properties onto each
answer and saves it, in one transaction, a handful of queries however many rows a
batch has; it hands the new answers to `then` inside that transaction. Answers come
in through `loop.intake`, which passes its triage as `then`, so no answer is stored
without its follow-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from closeloop.core.db import bulk_insert
from closeloop.core.errors import ConcurrentWriteError, FieldError
from closeloop.team.models import User

from .models import (
    Account,
    AccountChange,
    Person,
    Response,
    ResponseEdit,
    Survey,
    SurveyRequest,
)

# How often a write that collides with concurrent writers is tried before giving up. Each
# collision means another writer committed and is done, so up to this many writers racing
# for the same rows always all succeed.
WRITE_ATTEMPTS = 8


@dataclass
class AccountData:
    """Account facts as given by a caller; None means "leave as it is"."""

    external_id: str | None = None
    name: str | None = None
    tier: str | None = None
    arr_cents: int | None = None
    currency: str | None = None
    plan: str | None = None
    company_size: str | None = None
    industry: str | None = None
    customer_since: date | None = None
    owner_email: str | None = None
    sponsor_email: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    churned_at: datetime | None = None
    churn_reason: str | None = None
    reactivated: bool = False

    def key(self) -> tuple[str, str]:
        """How the account is found: by external id, else by name."""
        if self.external_id:
            return ("external_id", self.external_id)
        if self.name:
            return ("name", self.name)
        raise FieldError("person.account", "needs an external_id or a name")


@dataclass
class PersonData:
    """Person facts as given by a caller; None means "leave as it is"."""

    email: str | None = None
    external_id: str | None = None
    name: str | None = None
    phone: str | None = None
    locale: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    account: AccountData | None = None

    @classmethod
    def of(cls, person: Person) -> PersonData:
        """Finds a stored person again, changing nothing about them."""
        if person.email:
            return cls(email=person.email)
        return cls(external_id=person.external_id)

    def key(self) -> tuple[str, str]:
        """How the person is found: by email, else by external id."""
        if self.email:
            return ("email", self.email.strip().lower())
        if self.external_id:
            return ("external_id", self.external_id)
        raise FieldError("person", "needs an email or an external_id")


@dataclass
class ResponseData:
    """One answer to record."""

    person: PersonData
    score: int
    comment: str = ""
    created_at: datetime | None = None
    external_id: str | None = None
    source: str = Response.Source.API
    survey: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    request: SurveyRequest | None = None
    # Answer-only properties (e.g. a link's query string), laid over the person's snapshot.
    properties: dict[str, Any] = field(default_factory=dict)


ACCOUNT_PREFIX = "account."  # properties frozen from the account: closeloop's own facts


def _answer_only(properties: dict[str, Any]) -> dict[str, Any]:
    """An answer's own properties, less any that would pass for the account's facts."""
    return {k: v for k, v in properties.items() if not k.startswith(ACCOUNT_PREFIX)}


@dataclass
class Outcome:
    """What became of one item: its response, and whether this call created it."""

    response: Response
    created: bool


_ACCOUNT_FIELDS = (
    "name",
    "tier",
    "arr_cents",
    "currency",
    "plan",
    "company_size",
    "industry",
    "customer_since",
)
_PERSON_FIELDS = ("name", "phone", "locale")


def _apply(obj: Account | Person, data: AccountData | PersonData, names: Iterable[str]) -> bool:
    """Copy the given (non-None) fields and merge properties; True if anything changed."""
    changed = False
    for name in names:
        value = getattr(data, name)
        if value is not None and getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    merged = {**obj.properties, **data.properties}
    if merged != obj.properties:
        obj.properties = merged
        changed = True
    return changed


_Mention = TypeVar("_Mention", AccountData, PersonData)


def _merge(earlier: _Mention | None, later: _Mention) -> _Mention:
    """Two mentions of one account or person in a batch: later given fields win."""
    if earlier is None:
        return later
    merged = replace(earlier, properties={**earlier.properties, **later.properties})
    for f in fields(later):
        value = getattr(later, f.name)
        if value is not None and f.name != "properties":
            setattr(merged, f.name, value)
    return merged


def _changes(acc: Account, data: AccountData, is_new: bool, source: str) -> list[AccountChange]:
    """The history rows an update makes (before it is applied): churn, reactivation, and
    ARR going down or up on an account that already had one."""
    now = timezone.now()
    found = []
    if data.churned_at is not None and acc.churned_at is None:
        # A live account left. (A churned one given another date is a correction, not news.)
        found.append(
            AccountChange(
                kind=AccountChange.Kind.CHURNED,
                at=data.churned_at,
                arr_before_cents=acc.arr_cents if not is_new else data.arr_cents,
                reason=data.churn_reason or "",
                source=source,
            )
        )
    elif data.reactivated and acc.churned_at is not None:
        found.append(AccountChange(kind=AccountChange.Kind.REACTIVATED, at=now, source=source))
    after = data.arr_cents
    if not is_new and after is not None and after != acc.arr_cents and acc.arr_cents:
        kind = (
            AccountChange.Kind.CONTRACTION
            if after < acc.arr_cents
            else AccountChange.Kind.EXPANSION
        )
        found.append(
            AccountChange(
                kind=kind,
                at=now,
                arr_before_cents=acc.arr_cents,
                arr_after_cents=after,
                source=source,
            )
        )
    return found


def _apply_churn(acc: Account, data: AccountData) -> bool:
    changed = False
    if data.churned_at is not None and acc.churned_at != data.churned_at:
        acc.churned_at = data.churned_at
        changed = True
    elif data.reactivated and acc.churned_at is not None:
        acc.churned_at, acc.churn_reason = None, ""
        changed = True
    if data.churn_reason is not None and acc.churn_reason != data.churn_reason:
        acc.churn_reason = data.churn_reason
        changed = True
    return changed


def upsert_accounts(
    items: Sequence[AccountData], source: str = "api"
) -> dict[tuple[str, str], Account]:
    """Create or update accounts, found by external id or name, in a few queries; a churn,
    a reactivation or an ARR change is also kept in the account's history (`source`)."""
    wanted: dict[tuple[str, str], AccountData] = {}
    for data in items:
        wanted[data.key()] = _merge(wanted.get(data.key()), data)
    by_ext = [v for k, v in wanted if k == "external_id"]
    by_name = [v for k, v in wanted if k == "name"]
    found: dict[tuple[str, str], Account] = {}
    if by_ext:
        for acc in Account.objects.filter(external_id__any=by_ext):
            found[("external_id", acc.external_id or "")] = acc
    if by_name:
        for acc in Account.objects.filter(name__any=by_name, external_id__isnull=True):
            found.setdefault(("name", acc.name), acc)

    owners = _owners_by_email({d.owner_email for d in wanted.values() if d.owner_email})
    sponsors = _owners_by_email(
        {d.sponsor_email for d in wanted.values() if d.sponsor_email},
        "account.executive_sponsor_email",
    )
    new: list[Account] = []
    changed: list[Account] = []
    history: list[tuple[Account, AccountChange]] = []
    for key, data in wanted.items():
        is_new = key not in found
        if is_new:
            found[key] = Account(
                external_id=data.external_id, name=data.name or data.external_id or ""
            )
        acc = found[key]
        history += [(acc, c) for c in _changes(acc, data, is_new, source)]
        dirty = _apply_churn(acc, data)
        dirty = _apply(acc, data, _ACCOUNT_FIELDS) or dirty
        if data.owner_email and acc.owner_id != owners[data.owner_email].pk:
            acc.owner = owners[data.owner_email]
            dirty = True
        if data.sponsor_email and acc.executive_sponsor_id != sponsors[data.sponsor_email].pk:
            acc.executive_sponsor = sponsors[data.sponsor_email]
            dirty = True
        if is_new:
            new.append(acc)
        elif dirty:
            changed.append(acc)
    bulk_insert(new)
    if changed:
        now = timezone.now()
        for acc in changed:
            acc.updated_at = now
        Account.objects.bulk_update(
            changed,
            [
                *_ACCOUNT_FIELDS,
                "owner",
                "executive_sponsor",
                "properties",
                "churned_at",
                "churn_reason",
                "updated_at",
            ],
        )
    for acc, change in history:
        change.account = acc
    bulk_insert([change for _, change in history])
    return found


def _owners_by_email(emails: set[str], field: str = "account.owner_email") -> dict[str, User]:
    if not emails:
        return {}
    match = Q()
    for email in emails:
        match |= Q(email__iexact=email)
    owners = {u.email.lower(): u for u in User.objects.filter(match)}
    missing = sorted(emails - owners.keys())
    if missing:
        raise FieldError(field, f"no closeloop user has the email {missing[0]}")
    return owners


def _check_external_ids_free(wanted: dict[tuple[str, str], PersonData]) -> None:
    """Refuse to give a person (found by email) an external id another person holds."""
    claimed = {d.external_id: k[1] for k, d in wanted.items() if k[0] == "email" and d.external_id}
    if not claimed:
        return
    holders = Person.objects.filter(external_id__any=list(claimed))
    for holder in holders.only("email", "external_id"):
        if holder.email != claimed[holder.external_id or ""]:
            raise FieldError(
                "person.external_id",
                f"{holder.external_id!r} already belongs to a person with another email",
            )


def upsert_people(items: Sequence[PersonData]) -> dict[tuple[str, str], Person]:
    """Create or update people (and their accounts), found by email or external id."""
    accounts = upsert_accounts([p.account for p in items if p.account is not None])
    wanted: dict[tuple[str, str], PersonData] = {}
    for data in items:
        wanted[data.key()] = _merge(wanted.get(data.key()), data)
    emails = [v for k, v in wanted if k == "email"]
    ext_ids = [v for k, v in wanted if k == "external_id"]
    found: dict[tuple[str, str], Person] = {}
    if emails:
        for person in Person.objects.filter(email__any=emails).select_related("account"):
            found[("email", person.email or "")] = person
    if ext_ids:
        for person in Person.objects.filter(external_id__any=ext_ids).select_related("account"):
            found[("external_id", person.external_id or "")] = person
    _check_external_ids_free(wanted)

    new: list[Person] = []
    changed: list[Person] = []
    for key, data in wanted.items():
        account = accounts[data.account.key()] if data.account is not None else None
        is_new = key not in found
        if is_new:
            found[key] = Person(email=key[1] if key[0] == "email" else None)
        person = found[key]
        dirty = _apply(person, data, _PERSON_FIELDS)
        if data.external_id and person.external_id != data.external_id:
            person.external_id = data.external_id
            dirty = True
        if account is not None and person.account_id != account.pk:
            person.account = account
            dirty = True
        if is_new:
            new.append(person)
        elif dirty:
            changed.append(person)
    bulk_insert(new)
    if changed:
        now = timezone.now()
        for person in changed:
            person.updated_at = now
        Person.objects.bulk_update(
            changed, [*_PERSON_FIELDS, "external_id", "account", "properties", "updated_at"]
        )
    return found


def store_responses(
    items: Sequence[ResponseData], then: Callable[[list[Response]], object] | None
) -> list[Outcome]:
    """Store answers, all or none, returning one outcome per item in order; `then(new)`
    runs on the answers created, in the same transaction. With `then=None` they are
    stored marked `triage_pending` instead, for the worker to triage.

    An item whose `external_id` was stored before is not stored again: its
    outcome carries the original response with `created=False`, which makes
    retries safe.
    """
    if not items:
        return []
    surveys = _surveys({item.survey for item in items})
    # A concurrent request may create the same person or answer between our read and
    # our insert; the unique constraints catch it and a retry sees their rows.
    conflict: IntegrityError | None = None
    for _ in range(WRITE_ATTEMPTS):
        try:
            return _record(items, surveys, then)
        except IntegrityError as exc:
            conflict = exc
    raise ConcurrentWriteError() from conflict


def _record(
    items: Sequence[ResponseData],
    surveys: dict[str | None, Survey],
    then: Callable[[list[Response]], object] | None,
) -> list[Outcome]:
    with transaction.atomic():
        ext_ids = [i.external_id for i in items if i.external_id]
        existing = (
            {
                r.external_id: r
                for r in Response.objects.filter(external_id__any=ext_ids).select_related(
                    "person", "account", "survey"
                )
            }
            if ext_ids
            else {}
        )
        fresh = [i for i in items if not (i.external_id and i.external_id in existing)]
        people = upsert_people([i.person for i in fresh])
        now = timezone.now()
        to_create: list[Response] = []
        by_ext: dict[str, Response] = {}
        outcomes: list[Outcome] = []
        for item in items:
            if item.external_id and item.external_id in existing:
                outcomes.append(Outcome(existing[item.external_id], created=False))
                continue
            if item.external_id and item.external_id in by_ext:
                outcomes.append(Outcome(by_ext[item.external_id], created=False))
                continue
            person = people[item.person.key()]
            response = Response(
                person=person,
                survey=surveys[item.survey],
                request=item.request,
                account=person.account,
                score=item.score,
                comment=item.comment,
                source=item.source,
                external_id=item.external_id,
                # Answer-only properties never overwrite the account's facts, which
                # routing, segments and filters trust.
                properties={**person.snapshot(), **_answer_only(item.properties)},
                tags=item.tags,
                notes=item.notes,
                themes_status="pending" if item.comment.strip() else "",
                created_at=item.created_at or now,
                updated_at=now,
                triage_pending=then is None,
            )
            to_create.append(response)
            if item.external_id:
                by_ext[item.external_id] = response
            outcomes.append(Outcome(response, created=True))
        bulk_insert(to_create)
        answered = [r.request_id for r in to_create if r.request_id is not None]
        if answered:
            SurveyRequest.objects.filter(pk__any=answered).update(
                status=SurveyRequest.Status.ANSWERED, answered_at=now
            )
        if then is not None:
            then(to_create)
    return outcomes


def _surveys(slugs: set[str | None]) -> dict[str | None, Survey]:
    """The named surveys, with None standing for the default one, in one query."""
    wanted = {slug or Survey.DEFAULT_SLUG for slug in slugs}
    found: dict[str | None, Survey] = {s.slug: s for s in Survey.objects.filter(slug__in=wanted)}
    for slug in slugs:
        if slug and slug not in found:
            raise FieldError("survey", f"no survey with slug {slug!r}")
    if None in slugs:
        found[None] = found.get(Survey.DEFAULT_SLUG) or Survey.default()
    return found


def change_response(
    response: Response,
    *,
    score: int | None = None,
    comment: str | None = None,
    via: str,
    then: Callable[[Response, int, str], object],
    notes: str | None = None,
    properties: dict[str, Any] | None = None,
) -> Response:
    """Change an answer, keeping what it was; when its score or comment changed,
    `then(answer, old_score, old_comment)` runs in the same transaction.

    None leaves a field as it is. Properties given are merged into the answer's.
    """
    with transaction.atomic():
        current = Response.objects.select_for_update(of=("self",)).select_related(
            "person", "account", "survey"
        )
        answer = current.get(pk=response.pk)
        old_score, old_comment = answer.score, answer.comment
        new_score = old_score if score is None else score
        new_comment = old_comment if comment is None else comment
        fields_changed: list[str] = []
        if notes is not None and notes != answer.notes:
            answer.notes = notes
            fields_changed.append("notes")
        properties = _answer_only(properties or {})
        if properties and {**answer.properties, **properties} != answer.properties:
            answer.properties = {**answer.properties, **properties}
            fields_changed.append("properties")
        changed = (new_score, new_comment) != (old_score, old_comment)
        if changed:
            ResponseEdit.objects.create(
                response=answer,
                score_before=old_score,
                score_after=new_score,
                comment_before=old_comment,
                comment_after=new_comment,
                via=via,
            )
            answer.score, answer.comment = new_score, new_comment
            fields_changed += ["score", "comment"]
            if new_comment != old_comment:
                # A new comment is read again for its themes.
                answer.themes_status = "pending" if new_comment.strip() else ""
                answer.themes_attempts, answer.themes_next_at, answer.themes_error = 0, None, ""
                fields_changed += [
                    "themes_status",
                    "themes_attempts",
                    "themes_next_at",
                    "themes_error",
                ]
        if not fields_changed:
            return answer
        answer.updated_at = timezone.now()
        answer.save(update_fields=[*fields_changed, "updated_at"])
        if changed:
            then(answer, old_score, old_comment)
    return answer
