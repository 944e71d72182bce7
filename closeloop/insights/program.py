"""Program metrics (docs/domain.md §7): does the follow-up itself work?

Over the cases opened in a period, per owner, per team or per week/month/quarter:
- follow-up within 48h, automated and personal apart, against the 100% / 80% targets;
- the customer's response to the follow-up (warn under 20%);
- resolution: resolved, acknowledged but can't fix, no response, open;
- score change: of those who answered again, how many moved up to passive or promoter;
- churn by follow-up status: accounts churned after the case, followed up or not;
- median time to first touch;
- the follow-up conversation: offered, started, completed, stopped, the median number of
  questions answered, the share of cases whose root cause it found, and the response
  rate of followed-up cases that were offered it against those that had a plain email.

Each is a SQL aggregate: one grouped query for the counts, one window query for
the medians. `case_filter` gives the cases behind any figure, for its link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import (
    BooleanField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from closeloop.core.periods import Grain, as_period, trunc, within
from closeloop.loop.models import CALL_REACHED, Activity, Conversation, FollowUpCase, Message

FOLLOW_UP_HOURS = 48
TARGET_AUTOMATED = 100.0
TARGET_PERSONAL = 80.0
WARN_RESPONSE_RATE = 20.0

AUTOMATED = Q(action__startswith="automated_")
PERSONAL = ~AUTOMATED
FOLLOWED = Q(first_touch_at__isnull=False)
CLOSED = Q(status=FollowUpCase.Status.CLOSED)


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _replied() -> Exists:
    """The customer answered the follow-up: a reply arrived, or a call reached them."""
    return Exists(
        Activity.objects.filter(case=OuterRef("pk")).filter(
            Q(kind=Activity.Kind.REPLY_RECEIVED)
            | Q(kind=Activity.Kind.CALL_LOGGED, data__outcome__in=sorted(CALL_REACHED))
        )
    )


def _met_deadline() -> Q:
    return Q(first_touch_at__lte=F("created_at") + timedelta(hours=FOLLOW_UP_HOURS))


def _due() -> Q:
    """Cases old enough for their 48 hours to be over: the newer ones cannot fail yet."""
    return Q(created_at__lte=timezone.now() - timedelta(hours=FOLLOW_UP_HOURS))


def with_facts(qs: QuerySet[FollowUpCase]) -> QuerySet[FollowUpCase]:
    """Cases with the fact that needs a subquery: replied (the next score is kept on the
    case, `loop.next_answers`)."""
    return qs.alias(_replied=_replied())


def _late() -> Q:
    return Q(first_touch_at__isnull=True) | Q(
        first_touch_at__gt=F("created_at") + timedelta(hours=FOLLOW_UP_HOURS)
    )


OFFERED = Q(conversation__isnull=False)


def _offered() -> Exists:
    return Exists(Conversation.objects.filter(case=OuterRef("pk")))


def _figures() -> dict[str, Q]:
    """Each figure's cases, by name: the counts and the drill-down links share them."""
    due = _due()
    churned = Q(account__churned_at__gt=F("created_at"))
    started = Q(conversation__started_at__isnull=False)
    return {
        "cases": Q(),
        "automated_due": AUTOMATED & due,
        "automated_met": AUTOMATED & due & _met_deadline(),
        "automated_missed": AUTOMATED & due & _late(),
        "personal_due": PERSONAL & due,
        "personal_met": PERSONAL & due & _met_deadline(),
        "personal_missed": PERSONAL & due & _late(),
        "followed": FOLLOWED,
        "not_followed": ~FOLLOWED,
        "replied": FOLLOWED & Q(_replied=True),
        "not_replied": FOLLOWED & Q(_replied=False),
        "resolved": CLOSED & Q(resolution=FollowUpCase.Resolution.RESOLVED),
        "cant_fix": CLOSED & Q(resolution=FollowUpCase.Resolution.CANT_FIX),
        "no_response": CLOSED & Q(resolution=FollowUpCase.Resolution.NO_RESPONSE),
        "superseded": CLOSED & Q(resolution=FollowUpCase.Resolution.SUPERSEDED),
        "open": ~CLOSED,
        "answered_again": Q(next_score__isnull=False),
        "moved_up": Q(next_score__gte=7),
        "followed_answered_again": FOLLOWED & Q(next_score__isnull=False),
        "followed_moved_up": FOLLOWED & Q(next_score__gte=7),
        "unfollowed_answered_again": ~FOLLOWED & Q(next_score__isnull=False),
        "unfollowed_moved_up": ~FOLLOWED & Q(next_score__gte=7),
        "followed_churned": FOLLOWED & churned,
        "unfollowed_churned": ~FOLLOWED & churned,
        "conversation_offered": OFFERED,
        "conversation_started": started,
        "conversation_completed": Q(conversation__status=Conversation.Status.COMPLETED),
        "conversation_stopped": Q(conversation__status=Conversation.Status.STOPPED),
        "root_cause_known": started & ~Q(conversation__summary__root_cause=""),
        "conversation_followed": FOLLOWED & OFFERED,
        "conversation_replied": FOLLOWED & OFFERED & Q(_replied=True),
        "plain_followed": FOLLOWED & ~OFFERED,
        "plain_replied": FOLLOWED & ~OFFERED & Q(_replied=True),
    }


FIGURE_LABELS = {
    "cases": "all cases opened",
    "automated_due": "automated follow-ups at least 48h old",
    "automated_met": "automated follow-ups sent within 48h",
    "automated_missed": "automated follow-ups not sent within 48h",
    "personal_due": "personal follow-ups at least 48h old",
    "personal_met": "personal follow-ups made within 48h",
    "personal_missed": "personal follow-ups not made within 48h",
    "followed": "followed up",
    "not_followed": "never followed up",
    "replied": "followed up, and the customer responded",
    "not_replied": "followed up, no response from the customer",
    "resolved": "closed as resolved",
    "cant_fix": "closed as acknowledged, can't fix",
    "no_response": "closed with no response",
    "superseded": "closed as superseded",
    "open": "still open",
    "answered_again": "the customer answered a later survey",
    "moved_up": "the customer's next answer was passive or promoter",
    "followed_answered_again": "followed up, and answered a later survey",
    "followed_moved_up": "followed up, and moved up on the next survey",
    "unfollowed_answered_again": "not followed up, and answered a later survey",
    "unfollowed_moved_up": "not followed up, and moved up on the next survey",
    "followed_churned": "followed up, and the account churned afterwards",
    "unfollowed_churned": "not followed up, and the account churned afterwards",
    "conversation_offered": "offered the follow-up conversation",
    "conversation_started": "the customer answered in the follow-up conversation",
    "conversation_completed": "the follow-up conversation ran to its end",
    "conversation_stopped": "the customer stopped the follow-up conversation",
    "root_cause_known": "the follow-up conversation found the root cause",
    "conversation_followed": "followed up, with the conversation offered",
    "conversation_replied": "followed up with the conversation offered, and the customer responded",
    "plain_followed": "followed up by plain email (no conversation offered)",
    "plain_replied": "followed up by plain email, and the customer responded",
}


def case_filter(figure: str) -> Q:
    """The condition of a figure's cases (apply to `with_facts(...)`); KeyError if unknown."""
    return _figures()[figure]


@dataclass
class ProgramFigures:
    """The counts behind every program metric for one group of cases."""

    counts: dict[str, int] = field(default_factory=dict)
    median_first_touch: timedelta | None = None
    median_questions_answered: float | None = None

    def __getattr__(self, name: str) -> int:
        # Each count reads as an attribute (figures.resolved); a group without cases has 0.
        if name in FIGURE_LABELS or name.endswith("_accounts"):
            return int(self.__dict__.get("counts", {}).get(name, 0))
        raise AttributeError(name)

    @property
    def automated_rate(self) -> float | None:
        return _pct(self.automated_met, self.automated_due)

    @property
    def personal_rate(self) -> float | None:
        return _pct(self.personal_met, self.personal_due)

    @property
    def automated_on_target(self) -> bool:
        rate = self.automated_rate
        return rate is None or rate >= TARGET_AUTOMATED

    @property
    def personal_on_target(self) -> bool:
        rate = self.personal_rate
        return rate is None or rate >= TARGET_PERSONAL

    @property
    def response_rate(self) -> float | None:
        return _pct(self.replied, self.followed)

    @property
    def response_low(self) -> bool:
        rate = self.response_rate
        return rate is not None and rate < WARN_RESPONSE_RATE

    @property
    def resolution_rate(self) -> float | None:
        """Resolved among all the period's cases (open ones count against it)."""
        return _pct(self.resolved, self.cases)

    @property
    def score_change_rate(self) -> float | None:
        return _pct(self.moved_up, self.answered_again)

    @property
    def followed_score_change_rate(self) -> float | None:
        return _pct(self.followed_moved_up, self.followed_answered_again)

    @property
    def unfollowed_score_change_rate(self) -> float | None:
        return _pct(self.unfollowed_moved_up, self.unfollowed_answered_again)

    @property
    def followed_churn_rate(self) -> float | None:
        return _pct(self.followed_churned, self.followed_accounts)

    @property
    def unfollowed_churn_rate(self) -> float | None:
        return _pct(self.unfollowed_churned, self.unfollowed_accounts)

    @property
    def conversation_start_rate(self) -> float | None:
        return _pct(self.conversation_started, self.conversation_offered)

    @property
    def conversation_completion_rate(self) -> float | None:
        """Ran to the end, of those the customer started."""
        return _pct(self.conversation_completed, self.conversation_started)

    @property
    def root_cause_rate(self) -> float | None:
        """Cases whose root cause the conversation found, of all the period's cases."""
        return _pct(self.root_cause_known, self.cases)

    @property
    def conversation_reply_rate(self) -> float | None:
        return _pct(self.conversation_replied, self.conversation_followed)

    @property
    def plain_reply_rate(self) -> float | None:
        return _pct(self.plain_replied, self.plain_followed)


# Figures that depend on the two per-case facts (replied, next score). They are counted
# by grouping on the facts themselves, so each correlated subquery runs once per case;
# as FILTER conditions each would be repeated in every clause that mentions it.
FACT_FIGURES = {
    "replied",
    "not_replied",
    "conversation_replied",
    "plain_replied",
    "answered_again",
    "moved_up",
    "followed_answered_again",
    "followed_moved_up",
    "unfollowed_answered_again",
    "unfollowed_moved_up",
}
DISTINCT_FIGURES = {
    "followed_churned",
    "unfollowed_churned",
    "followed_accounts",
    "unfollowed_accounts",
}


def _plain_aggregates() -> dict[str, Any]:
    """Conditional counts that need no subquery, and the distinct-account churn counts."""
    counts: dict[str, Any] = {}
    for name, condition in _figures().items():
        if name in FACT_FIGURES:
            continue
        if name.endswith("_churned"):
            # Churn is an account's: each account counts once per follow-up status.
            counts[name] = Count("account", filter=condition, distinct=True)
        else:
            counts[name] = Count("id", filter=condition)
    counts["followed_accounts"] = Count("account", filter=FOLLOWED, distinct=True)
    counts["unfollowed_accounts"] = Count("account", filter=~FOLLOWED, distinct=True)
    return counts


def _fact_counts(qs: QuerySet[FollowUpCase], expr: Any) -> dict[Any, dict[str, int]]:
    """The FACT_FIGURES per group, from one GROUP BY (group, followed, replied, next score)."""
    rows = (
        qs.order_by()
        .annotate(
            g=expr if expr is not None else Value(0),
            followed=ExpressionWrapper(FOLLOWED, output_field=BooleanField()),
            replied=_replied(),
            offered=_offered(),
        )
        .values("g", "followed", "replied", "offered", "next_score")
        .annotate(n=Count("id"))
    )
    found: dict[Any, dict[str, int]] = {}
    for row in rows:
        c = found.setdefault(row["g"] if expr is not None else None, dict.fromkeys(FACT_FIGURES, 0))
        n, followed, score = row["n"], row["followed"], row["next_score"]
        status = "followed" if followed else "unfollowed"
        if followed:
            c["replied" if row["replied"] else "not_replied"] += n
            if row["replied"]:
                c["conversation_replied" if row["offered"] else "plain_replied"] += n
        if score is not None:
            c["answered_again"] += n
            c[f"{status}_answered_again"] += n
            if score >= 7:
                c["moved_up"] += n
                c[f"{status}_moved_up"] += n
    return found


GROUPS = {"owner": "owner_id", "team": "team_id"}


def _group_expr(group: str | Grain | None) -> Any:
    if isinstance(group, Grain):
        return trunc(group)
    if group is None:
        return None
    return F(GROUPS[group])


def _key(group: str | Grain | None, value: Any) -> Any:
    return as_period(value) if isinstance(group, Grain) and value is not None else value


def program_figures(
    qs: QuerySet[FollowUpCase], group: str | Grain | None = None
) -> dict[Any, ProgramFigures]:
    """Every program metric for `qs`, whole (key None) or per owner id, team id or period start.

    Three queries whatever the number of cases: the plain conditional counts, the
    counts of the per-case facts, and a window query for the medians.
    """
    expr = _group_expr(group)
    base = qs.order_by()
    if expr is None:
        plain = [{"g": None, **base.aggregate(**_plain_aggregates())}]
    else:
        plain = list(base.annotate(g=expr).values("g").annotate(**_plain_aggregates()))
    facts = _fact_counts(base, expr)
    empty = dict.fromkeys(FACT_FIGURES, 0)
    result = {}
    for row in plain:
        g = row.pop("g")
        result[_key(group, g)] = ProgramFigures(counts={**row, **facts.get(g, empty)})
    for key, median in median_first_touch(qs, group).items():
        if key in result:
            result[key].median_first_touch = median
    for key, questions in median_questions(qs, group).items():
        if key in result:
            result[key].median_questions_answered = questions
    return result


def program_breakdown(
    qs: QuerySet[FollowUpCase], group: str | Grain
) -> tuple[ProgramFigures, dict[Any, ProgramFigures]]:
    """The whole and its groups, reading the cases' facts once.

    The whole's counts are the sums of the groups' (every case is in exactly one
    group); only the distinct-account counts and the median, which do not add up,
    are read again, without the costly facts.
    """
    groups = program_figures(qs, group)
    counts = {
        name: sum(f.counts.get(name, 0) for f in groups.values())
        for name in {n for f in groups.values() for n in f.counts} - DISTINCT_FIGURES
    }
    plain = _plain_aggregates()
    distinct = {name: plain[name] for name in DISTINCT_FIGURES}
    counts.update(qs.order_by().aggregate(**distinct))
    whole = ProgramFigures(
        counts=counts,
        median_first_touch=median_first_touch(qs).get(None),
        median_questions_answered=median_questions(qs).get(None),
    )
    return whole, groups


def median_first_touch(
    qs: QuerySet[FollowUpCase], group: str | Grain | None = None
) -> dict[Any, timedelta]:
    """The median time from a case's opening to its first touch, per group, in SQL.

    Rows are numbered by wait within each group; only the middle one or two rows
    of each group leave the database, and two middles are averaged.
    """
    expr = _group_expr(group)
    wait = ExpressionWrapper(F("first_touch_at") - F("created_at"), output_field=DurationField())
    partition = [expr] if expr is not None else []
    ranked = (
        qs.order_by()
        .filter(first_touch_at__isnull=False)
        .annotate(
            g=expr if expr is not None else F("loop"),
            wait=wait,
            rn=Window(RowNumber(), partition_by=partition, order_by=[wait.asc(), F("id").asc()]),
            n=Window(Count("id"), partition_by=partition),
        )
        .filter(rn__gte=F("n") / 2.0, rn__lte=F("n") / 2.0 + 1)
        .values("g", "wait")
    )
    middles: dict[Any, list[timedelta]] = {}
    for row in ranked:
        key = _key(group, row["g"]) if expr is not None else None
        middles.setdefault(key, []).append(row["wait"])
    return {key: sum(waits, timedelta()) / len(waits) for key, waits in middles.items()}


def median_questions(
    qs: QuerySet[FollowUpCase], group: str | Grain | None = None
) -> dict[Any, float]:
    """The median number of questions customers answered in the conversations they
    started, per group: one grouped count per conversation, the median taken here."""
    expr = _group_expr(group)
    answered = Count(
        "conversation__messages",
        filter=Q(conversation__messages__sender=Message.Sender.CUSTOMER),
    )
    rows = (
        qs.order_by()
        .filter(conversation__started_at__isnull=False)
        .annotate(g=expr if expr is not None else Value(0), answered=answered)
        .values_list("g", "answered")
    )
    found: dict[Any, list[int]] = {}
    for g, n in rows:
        found.setdefault(_key(group, g) if expr is not None else None, []).append(n)
    medians = {}
    for key, counts in found.items():
        counts.sort()
        middle = len(counts) // 2
        medians[key] = (
            float(counts[middle]) if len(counts) % 2 else (counts[middle - 1] + counts[middle]) / 2
        )
    return medians


def cases_opened(since: date, until: date, loop: str = FollowUpCase.Loop.DETRACTOR) -> Any:
    """Cases of `loop` opened in [since, until] (organisation's days)."""
    return FollowUpCase.objects.filter(within(since, until), loop=loop)
