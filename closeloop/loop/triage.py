"""Triage: what a stored answer becomes (a case with an owner, a clock, a priority and
its first messages), or how a changed answer moves its case. `intake` calls it in the
transaction that stores the answers; read `intake` for the order of events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from closeloop.core import nps
from closeloop.core.db import bulk_insert
from closeloop.surveys.models import Response, SurveyRequest
from closeloop.team.models import User

from . import (
    actions,
    batch,
    checkback,
    conversation,
    exits,
    next_answers,
    notify,
    priority,
    routing,
    signals,
    sla,
)
from .models import (
    Activity,
    CheckBack,
    ExitInterview,
    FollowUpCase,
    RoutingRule,
    Task,
    TriagePolicy,
    open_filter,
    waiting_for_person,
)
from .policy import Action, Value


def follow_up(responses: Sequence[Response]) -> list[FollowUpCase]:
    """Open or update cases for newly stored answers; returns the cases touched.

    Decisions are made answer by answer (in time order), then the new cases are
    inserted together and their timeline, tasks and outbox rows written per
    table, so a batch of a thousand answers costs a handful of statements.
    """
    if not responses:
        return []
    with batch.collecting():
        notify.responses_created(responses)
        people = {r.person_id for r in responses}
        histories = next_answers.history(people)  # read once, for both uses below
        touched = _follow_up(responses, histories)
        # Any answer, fresh or backfilled, may be an earlier case's next answer.
        next_answers.refresh(people, histories)
        return touched


def _follow_up(
    responses: Sequence[Response], histories: next_answers.History
) -> list[FollowUpCase]:
    policy = TriagePolicy.current()
    now = timezone.now()
    cutoff = now - timedelta(hours=policy.rules.fresh_within_hours)
    fresh = sorted((r for r in responses if r.created_at >= cutoff), key=lambda r: r.created_at)
    if not fresh:
        return []
    _load_owners(fresh)
    people = {r.person_id for r in fresh}
    open_by_person = {
        c.person_id: c
        for c in FollowUpCase.objects.filter(open_filter(), person_id__any=people)
        .select_related("owner", "account", "person", "response", "policy")
        .order_by("created_at")
    }
    previous = _previous_scores(fresh, histories)
    rules = list(RoutingRule.objects.filter(active=True).select_related("team"))
    capacity = _capacity(policy)
    # Answers to a check-back go back to their case (checkback.answered), not to triage.
    asked = [r.request_id for r in fresh if r.request_id is not None]
    checks = (
        {
            c.request_id: c
            for c in CheckBack.objects.filter(request_id__any=asked).select_related(
                "case__owner__manager", "case__person", "case__account", "case__policy"
            )
        }
        if asked
        else {}
    )
    # Answers to an exit interview are the churned account's reasons: kept, not triaged.
    leaving = (
        {e.request_id: e for e in ExitInterview.objects.filter(request_id__any=asked)}
        if asked
        else {}
    )
    # New cases, each with the answers it gathers in this batch (the opener first).
    opened: dict[int, tuple[FollowUpCase, list[Response]]] = {}
    touched: list[FollowUpCase] = []
    for response in fresh:
        check = checks.get(response.request_id) if response.request_id is not None else None
        if check is not None:
            touched.append(checkback.answered(check, response))
            continue
        if response.request_id in leaving:
            exits.answered(leaving[response.request_id], response)
            continue
        case = open_by_person.get(response.person_id)
        detractor = response.category == nps.Category.DETRACTOR
        if case is not None and (case.loop == FollowUpCase.Loop.DETRACTOR or not detractor):
            if case.pk is None:
                _join_unsaved(case, response, opened[id(case)][1])
            else:
                join(case, response)
                touched.append(case)
            continue
        if case is not None and case.pk is not None:
            actions.close(
                case,
                FollowUpCase.Resolution.SUPERSEDED,
                "a detractor answer opened a new case",
                f"new answer {response.score}/10 (response {response.pk})",
                None,
            )
        elif case is not None:
            # A promoter/passive loop decided earlier in this batch: it never starts.
            del opened[id(case)]
        new = triage(response, policy, previous.get(response.pk), rules, now, capacity)
        if new is None:
            continue
        opened[id(new)] = (new, [response])
        open_by_person[response.person_id] = new
    cases = [case for case, _ in opened.values()]
    bulk_insert(cases)
    for case, answers in opened.values():
        start(case, answers)
    return touched + cases


def _capacity(policy: TriagePolicy) -> routing.Capacity:
    """Each owner's open personal cases, when the policy caps them (one grouped query)."""
    limit = policy.rules.max_open_personal_cases
    if limit is None:
        return routing.Capacity()
    rows = (
        FollowUpCase.objects.filter(waiting_for_person())
        .exclude(owner__isnull=True)
        .values("owner")
        .annotate(n=Count("id"))
        .values_list("owner", "n")
    )
    return routing.Capacity(limit, dict(rows))


def _load_owners(fresh: Sequence[Response]) -> None:
    """Fetch the accounts' owners and sponsors in one query instead of one per answer."""
    accounts = [r.account for r in fresh if r.account is not None]
    wanted = {a.owner_id for a in accounts} | {a.executive_sponsor_id for a in accounts}
    users = User.objects.in_bulk({pk for pk in wanted if pk is not None})
    for account in accounts:
        # Set even when None, so reading it later makes no query.
        account.owner = users.get(account.owner_id) if account.owner_id else None
        account.executive_sponsor = (
            users.get(account.executive_sponsor_id) if account.executive_sponsor_id else None
        )


def _previous_scores(fresh: Sequence[Response], histories: next_answers.History) -> dict[int, int]:
    """For each answer, the score of the same person's answer just before it
    (`histories`: the people's answers, `next_answers.history`)."""
    ids = {r.pk for r in fresh}
    found: dict[int, int] = {}
    for r in fresh:
        earlier = [
            (at, pk, score)
            for at, pk, score in histories.get(r.person_id, [])
            if pk not in ids and (at, pk) < (r.created_at, r.pk)
        ]
        if earlier:
            found[r.pk] = earlier[-1][2]
    return found


def triage(
    response: Response,
    policy: TriagePolicy,
    previous_score: int | None,
    rules: Sequence[RoutingRule],
    now: datetime,
    capacity: routing.Capacity | None = None,
) -> FollowUpCase | None:
    """Decide one answer's case (not yet saved); None when the policy has no loop for it."""
    config = policy.rules
    account = response.account
    person = response.person
    category = response.category
    band = response.band
    value = config.value_of(account.tier, account.arr_cents) if account else Value.STANDARD
    action = config.action_for(category, band, value)
    if action is None:
        return None
    loop = FollowUpCase.Loop(category.value)
    personal = loop == FollowUpCase.Loop.DETRACTOR and not action.automated
    decided = routing.route(account, person, rules, capacity if personal else None)
    if personal and capacity is not None:
        capacity.took(decided.owner)
    due_at = None
    if loop == FollowUpCase.Loop.DETRACTOR:
        due_at = sla.deadline(
            now,
            config.sla_hours_for(band, value),
            config.business_hours,
            decided.owner.time_zone if decided.owner else None,
        )
    return FollowUpCase(
        loop=loop,
        person=person,
        account=account,
        response=response,
        score=response.score,
        previous_score=previous_score,
        band=band.value if band else "",
        high_value=value == Value.HIGH,
        action=action.value,
        policy=policy,
        rule=f"{band.value} × {value.value}" if band else f"{category.value} loop",
        owner=decided.owner,
        team=decided.team,
        routed_by=decided.why,
        due_at=due_at,
        next_escalation_at=due_at,
        priority=priority.priority(
            account.arr_cents if account else 0,
            response.score,
            previous_score,
            priority.last_active(person.properties, account.properties if account else {}),
            response.created_at,
            now,
        ),
        created_at=now,
        updated_at=now,
        priority_refreshed_at=now,
    )


def _join_unsaved(case: FollowUpCase, response: Response, answers: list[Response]) -> None:
    """A second answer in the same batch joins the case decided for the first."""
    case.previous_score = case.score
    case.score = response.score
    case.response = response
    answers.append(response)


def start(case: FollowUpCase, answers: Sequence[Response]) -> None:
    """Everything a new (just saved) case sets going: timeline, tasks, alerts, outreach."""
    action = case.action_enum
    opener = answers[0]
    for response in answers:
        batch.add(FollowUpCase.responses.through(followupcase=case, response=response))
    case.log(
        Activity.Kind.CREATED,
        f"{case.loop} {opener.score}/10 → {action.label} "
        f"(rule {case.rule}, policy v{case.policy.version})"
        + (f"; due {case.due_at:%Y-%m-%d %H:%M} UTC" if case.due_at else ""),
        response=opener.pk,
    )
    case.log(
        Activity.Kind.ASSIGNED,
        f"routed to {case.owner.display_name if case.owner else 'the unassigned queue'}"
        f" ({case.routed_by})",
        owner=case.owner_id,
    )
    for response in answers[1:]:
        case.log(
            Activity.Kind.ANSWER_JOINED,
            f"new answer {response.score}/10" + _quoted(response),
            response=response.pk,
        )
    person = case.person
    if case.loop == FollowUpCase.Loop.DETRACTOR:
        _suggest_type(case, opener)
    if action == Action.CALL and case.due_at is not None:
        batch.add(
            Task(
                case=case,
                kind=Task.Kind.CALL,
                title=f"Call {person.name or person.email or person} about their {opener.score}/10",
                owner=case.owner,
                due_at=case.due_at,
            )
        )
    talk = conversation.offer(case) if case.loop == FollowUpCase.Loop.DETRACTOR else None
    link = talk.url if talk is not None else ""
    if action.automated:
        notify.first_outreach(case, link)
    elif talk is not None and case.due_at is not None and case.policy.rules.acknowledge_personal:
        notify.acknowledgement(case, link)
    if action == Action.AUTOMATED_EMAIL_SURVEY:
        batch.add(
            SurveyRequest(
                person=person,
                survey=opener.survey,
                scheduled_at=case.created_at
                + timedelta(days=case.policy.rules.follow_up_survey_days),
                purpose=SurveyRequest.Purpose.FOLLOW_UP,
                status_reason=f"follow-up survey for case {case.pk}",
            )
        )
    if case.loop == FollowUpCase.Loop.DETRACTOR:
        notify.owner_alert(case)
        notify.sponsor_alert(case)
        notify.case_event(case, "case.created")


LOYAL_YEARS = 2


def _suggest_type(case: FollowUpCase, opener: Response) -> None:
    """What kind of detractor the comment already says (docs/domain.md §5): churn words →
    leaving; a named competitor → evaluating; years with us, or a first low score after
    a good one at an account of LOYAL_YEARS or more → loyal."""
    said = signals.read(opener.comment) if opener.comment.strip() else signals.Signals()
    since = case.account.customer_since if case.account is not None else None
    years = (opener.created_at.date() - since).days / 365.25 if since else 0.0
    if said.churn:
        case.suggest_type("leaving", "signals", f"“{said.churn}”")
    elif said.competitor:
        case.suggest_type("evaluating", "signals", f"“{said.competitor_quote}”")
    elif said.loyal:
        case.suggest_type("loyal", "signals", f"“{said.loyal}”")
    elif case.previous_score is not None and case.previous_score >= 7 and years >= LOYAL_YEARS:
        case.suggest_type(
            "loyal",
            "signals",
            f"a first low score after {case.previous_score}/10, a customer for {years:.0f} years",
        )


def answer_changed(response: Response, old_score: int, old_comment: str) -> None:
    """A person changed an answer (a second click, an edited comment, an API update).

    The change lands on the case that holds the answer, with the owner told
    when the case is an open detractor case. An answer without a case is
    triaged as if new (within the freshness window), so a 9 changed to a 2
    gets the follow-up any 2 gets.
    """
    with batch.collecting():
        notify.response_event([response], "response.updated")
        case = (
            FollowUpCase.objects.filter(Q(response=response) | Q(responses=response))
            .select_related("owner", "account", "person", "response", "policy")
            .order_by("-created_at")
            .first()
        )
        histories = next_answers.history([response.person_id])
        if case is None:
            _follow_up([response], histories)
        # Its new score may be an earlier case's next answer (or the case new here needs one).
        next_answers.refresh([response.person_id], histories)
        if case is None:
            return
        if case.response_id == response.pk:
            case.score = response.score
            case.priority = sla.compute_priority(case)
            case.priority_refreshed_at = timezone.now()
            case.save_changes("score", "priority", "priority_refreshed_at")
        what = f"changed their answer from {old_score}/10 to {response.score}/10"
        if response.comment != old_comment:
            what += _quoted(response) if response.comment.strip() else " and removed the comment"
        case.log(Activity.Kind.ANSWER_CHANGED, what, response=response.pk)
        if case.closed_at is None and case.loop == FollowUpCase.Loop.DETRACTOR:
            notify.owner_alert(case, reason="Answer changed on")
            notify.case_event(case, "case.updated")


def _quoted(response: Response) -> str:
    comment = response.comment.strip()
    return f": “{comment}”" if comment else ""


def join(case: FollowUpCase, response: Response) -> None:
    """A newer answer from the same person lands on their open case."""
    old = case.score
    batch.add(FollowUpCase.responses.through(followupcase=case, response=response))
    case.previous_score = old
    case.score = response.score
    case.response = response
    case.priority = sla.compute_priority(case)
    case.priority_refreshed_at = timezone.now()
    case.save_changes("previous_score", "score", "response", "priority", "priority_refreshed_at")
    case.log(
        Activity.Kind.ANSWER_JOINED,
        f"new answer {response.score}/10 (was {old})" + _quoted(response),
        response=response.pk,
    )
    if case.loop == FollowUpCase.Loop.DETRACTOR:
        notify.owner_alert(case, reason="New answer on")
        notify.case_event(case, "case.updated")
