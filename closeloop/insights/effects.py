"""Which follow-up moves customers (docs/domain.md §7): the program's cases broken down
by action, channel, detractor type and recovery gesture, and the follow-up return.

For each group of cases:
- recovered: of those who answered a later survey (a check-back counts), the share whose
  next answer was passive or promoter, with its Wilson 95% interval;
- the median score change from the answer that opened the case to the next one;
- churn within 90 days: of the cases opened at least 90 days ago on an account, the
  share whose account churned in the 90 days after the case opened;
- the median time to recovery: from the case opening to the recovering answer.
A group with fewer than MIN_N answers behind a share is flagged, not ranked.

The channel is how the customer was reached: `call` when a call reached them, else
`conversation` when they answered in the follow-up conversation, else `email` when
they were followed up at all, else `none`. A case with several gestures counts once
under each kind; a case with none is under `none`.

The follow-up return compares the ARR of detractor accounts still live 90 days after
their latest case of the period, followed up or not. It is an association: who gets
followed up is not chosen at random, and the page says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
)
from django.utils import timezone

from closeloop.core.nps import share_interval
from closeloop.loop.models import CALL_REACHED, Activity, Conversation, FollowUpCase, Gesture
from closeloop.loop.policy import Action

CHURN_WINDOW = timedelta(days=90)
# Below this many cases behind a share its interval is wider than ±18 points; the same
# threshold as segments (insights.segments.MIN_SEGMENT_N).
MIN_N = 30
BOOTSTRAP = 1000  # draws behind the follow-up return's interval
RECOVERED_FROM = 7
NONE = "none"

DIMENSIONS = {
    "action": "Action",
    "channel": "Channel",
    "detractor_type": "Detractor type",
    "gesture": "Gesture",
}
CHANNELS = {
    "call": "Call (reached)",
    "conversation": "Follow-up conversation",
    "email": "Email only",
    NONE: "Not followed up",
}


def labels(dimension: str) -> dict[str, str]:
    if dimension == "action":
        return {a.value: a.label for a in Action}
    if dimension == "channel":
        return CHANNELS
    if dimension == "detractor_type":
        return {**dict(FollowUpCase.DetractorType.choices), NONE: "Not set"}
    return {**dict(Gesture.Kind.choices), NONE: "No gesture"}


def label(dimension: str, key: str) -> str:
    return labels(dimension).get(key, key)


def _share(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


@dataclass
class Effect:
    """What followed one group's cases."""

    key: str
    cases: int = 0
    changes: list[int] = field(default_factory=list)  # next score − opening score
    recovered: int = 0
    recovery_waits: list[timedelta] = field(default_factory=list)
    churn_due: int = 0
    churned: int = 0

    @property
    def answered_again(self) -> int:
        return len(self.changes)

    @property
    def recovered_rate(self) -> float | None:
        return _share(self.recovered, self.answered_again)

    @property
    def recovered_interval(self) -> tuple[float, float] | None:
        return share_interval(self.recovered, self.answered_again) if self.changes else None

    @property
    def recovered_small(self) -> bool:
        return self.answered_again < MIN_N

    @property
    def median_score_change(self) -> float | None:
        return float(statistics.median(self.changes)) if self.changes else None

    @property
    def churn_rate(self) -> float | None:
        return _share(self.churned, self.churn_due)

    @property
    def churn_interval(self) -> tuple[float, float] | None:
        return share_interval(self.churned, self.churn_due) if self.churn_due else None

    @property
    def churn_small(self) -> bool:
        return self.churn_due < MIN_N

    @property
    def median_time_to_recovery(self) -> timedelta | None:
        waits = sorted(self.recovery_waits)
        if not waits:
            return None
        middle = len(waits) // 2
        return waits[middle] if len(waits) % 2 else (waits[middle - 1] + waits[middle]) / 2


@dataclass
class Side:
    """Detractor accounts on one side of the follow-up return."""

    accounts: int = 0
    live_accounts: int = 0
    arr_cents: int = 0
    live_arr_cents: int = 0
    members: list[tuple[int, bool]] = field(default_factory=list)  # (ARR, live) each

    @property
    def kept_rate(self) -> float | None:
        """The share of the side's ARR still live 90 days on."""
        return _share(self.live_arr_cents, self.arr_cents)

    @property
    def live_interval(self) -> tuple[float, float] | None:
        """The Wilson interval of the share of accounts still live."""
        return share_interval(self.live_accounts, self.accounts) if self.accounts else None

    @property
    def small(self) -> bool:
        return self.accounts < MIN_N


@dataclass
class FollowUpReturn:
    followed: Side
    not_followed: Side

    @property
    def difference(self) -> float | None:
        """Points of ARR kept, followed up minus not."""
        a, b = self.followed.kept_rate, self.not_followed.kept_rate
        return a - b if a is not None and b is not None else None

    @property
    def difference_interval(self) -> tuple[float, float] | None:
        """A 95% interval of `difference`, from a bootstrap that resamples each side's
        accounts (seeded, so a page shows the same figures twice); None with fewer
        than MIN_N accounts on a side."""
        if min(self.followed.accounts, self.not_followed.accounts) < MIN_N:
            return None
        import numpy as np

        rng = np.random.default_rng(13)

        def kept(side: Side) -> Any:
            arr = np.array([a for a, _ in side.members], dtype=float)
            live = np.array([a if alive else 0 for a, alive in side.members], dtype=float)
            picks = rng.integers(0, len(arr), (BOOTSTRAP, len(arr)))
            total = arr[picks].sum(axis=1)
            return np.where(total > 0, live[picks].sum(axis=1) / np.maximum(total, 1), np.nan)

        draws = (kept(self.followed) - kept(self.not_followed)) * 100
        draws = draws[~np.isnan(draws)]
        if not len(draws):
            return None
        return float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))

    @property
    def worth_cents(self) -> int | None:
        """The difference applied to the followed-up accounts' ARR: what following up is
        associated with keeping, if the two sides were otherwise alike."""
        if self.difference is None:
            return None
        return round(self.followed.arr_cents * self.difference / 100)


def _reached() -> Exists:
    """A call reached the customer."""
    return Exists(
        Activity.objects.filter(
            case=OuterRef("pk"),
            kind=Activity.Kind.CALL_LOGGED,
            data__outcome__in=sorted(CALL_REACHED),
        )
    )


def _talked() -> Exists:
    """The customer answered in the follow-up conversation."""
    return Exists(Conversation.objects.filter(case=OuterRef("pk"), started_at__isnull=False))


def _key_columns(dimension: str) -> dict[str, Any]:
    """What a case's group is read from, per dimension."""
    if dimension == "channel":
        followed = ExpressionWrapper(Q(first_touch_at__isnull=False), output_field=BooleanField())
        return {"reached": _reached(), "talked": _talked(), "followed": followed}
    if dimension == "gesture":
        return {"k": F("gestures__kind")}  # a row per gesture; none gives one NULL row
    return {"k": F(dimension)}


def _key(dimension: str, row: dict[str, Any]) -> str:
    if dimension == "channel":
        if row["reached"]:
            return "call"
        if row["talked"]:
            return "conversation"
        return "email" if row["followed"] else NONE
    return str(row["k"] or NONE)


def effects(
    qs: QuerySet[FollowUpCase], dimension: str, now: datetime | None = None
) -> list[Effect]:
    """One Effect per group of `dimension` among `qs`, the largest group first.

    Two grouped queries whatever the number of cases: the counts per group, opening and
    next score and churn state (score changes are whole numbers, so their median comes
    from those counts), and the waits of the recovered cases for their median. A case
    with several gestures counts once under each kind (distinct cases per group).
    """
    if dimension not in DIMENSIONS:
        raise KeyError(dimension)
    now = now or timezone.now()
    keys = _key_columns(dimension)
    due = Q(account__isnull=False, created_at__lte=now - CHURN_WINDOW)
    churned = due & Q(
        account__churned_at__gt=F("created_at"),
        account__churned_at__lte=F("created_at") + CHURN_WINDOW,
    )
    base = qs.order_by().annotate(
        **keys,
        # The case keeps the score of the answer on it: no join to the answers.
        opening=F("score"),
        due=ExpressionWrapper(due, output_field=BooleanField()),
        churned_in=ExpressionWrapper(churned, output_field=BooleanField()),
    )
    groups: dict[str, Effect] = {}
    counted = base.values(*keys, "opening", "next_score", "due", "churned_in").annotate(
        n=Count("id", distinct=dimension == "gesture")
    )
    for row in counted:
        key = _key(dimension, row)
        effect = groups.setdefault(key, Effect(key))
        n = row["n"]
        effect.cases += n
        if row["next_score"] is not None and row["opening"] is not None:
            effect.changes += [row["next_score"] - row["opening"]] * n
            if row["next_score"] >= RECOVERED_FROM:
                effect.recovered += n
        effect.churn_due += n if row["due"] else 0
        effect.churned += n if row["churned_in"] else 0
    wait = ExpressionWrapper(F("next_answered_at") - F("created_at"), output_field=DurationField())
    recovered = (
        base.filter(next_score__gte=RECOVERED_FROM, score__isnull=False)
        .annotate(wait=wait)
        .values(*keys, "id", "wait")
        .distinct()
    )
    for row in recovered:
        groups[_key(dimension, row)].recovery_waits.append(row["wait"])
    return sorted(groups.values(), key=lambda e: (-e.cases, e.key))


def follow_up_return(qs: QuerySet[FollowUpCase], now: datetime | None = None) -> FollowUpReturn:
    """ARR kept 90 days after a detractor case, accounts followed up against the rest.

    Each account counts once, by its latest case opened at least 90 days ago: on the
    followed-up side when that case was followed up, and live when it had not churned
    90 days after that case opened.
    """
    now = now or timezone.now()
    due = (
        qs.order_by()
        .filter(account__isnull=False, created_at__lte=now - CHURN_WINDOW)
        .values_list(
            "account_id",
            "created_at",
            "first_touch_at",
            "account__arr_cents",
            "account__churned_at",
        )
    )
    accounts: dict[int, dict[str, Any]] = {}
    for account_id, opened, touched, arr, churned in due.order_by("created_at", "id"):
        accounts[account_id] = {
            "last": opened,
            "followed": touched is not None,
            "arr": arr,
            "churned": churned,
        }
    sides = {True: Side(), False: Side()}
    for a in accounts.values():
        side = sides[a["followed"]]
        live = a["churned"] is None or a["churned"] > a["last"] + CHURN_WINDOW
        side.accounts += 1
        side.arr_cents += a["arr"]
        side.members.append((a["arr"], live))
        if live:
            side.live_accounts += 1
            side.live_arr_cents += a["arr"]
    return FollowUpReturn(followed=sides[True], not_followed=sides[False])


def case_filter(dimension: str, key: str) -> Q:
    """The condition of a group's cases, for the link to them on the cases page."""
    if dimension == "channel":
        reached, talked = _reached(), _talked()
        followed = Q(first_touch_at__isnull=False)
        return {
            "call": Q(reached),
            "conversation": ~Q(reached) & Q(talked),
            "email": ~Q(reached) & ~Q(talked) & followed,
            NONE: ~Q(reached) & ~Q(talked) & ~followed,
        }[key]
    if dimension == "gesture":
        some = Exists(Gesture.objects.filter(case=OuterRef("pk")))
        kind = Exists(Gesture.objects.filter(case=OuterRef("pk"), kind=key))
        return ~Q(some) if key == NONE else Q(kind)
    return Q(**{dimension: "" if key == NONE else key})
