"""Does account health foretell churn? The backtest, and the model fitted on it
(docs/insights.md, "Backtest" and "The fitted model").

At the first moment of each past month (the last MAX_MONTHS whose next HORIZON has
passed), every account that was a customer then is scored as it stood then: its
answers, cases, billing, usage and tickets up to that moment and no later
(`health.scores(now=…)`). An account *churned* in that month's row when its
`churned_at` falls in the HORIZON after the moment.

Each month, and all months pooled, report the AUC (the chance that a churned account
scored as riskier than one that stayed; 0.5 is a coin) of:
- the health score in use (lower is riskier);
- NPS alone: the mean of the account's people's latest answers (the health score's
  own NPS level), an account with none placed at the month's mean.
The pooled figures come with a 95% interval from a bootstrap over accounts (an account
appears in several months, so rows are not independent).

The fitted model (issue 22): with at least MIN_CHURNED churned accounts in the
backtest, a logistic regression on the snapshot rows (one 0/1 column per health signal,
churn within HORIZON the outcome) gives each signal its own weight, as points:
POINTS_PER_LOGIT points per unit of log-odds, a signal that lowers churn counting 0.
It is put in use only when, out of fold (folds of whole accounts), it ranks churn at
least as well as the written weights on the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db.models import Min
from django.utils import timezone

from closeloop.surveys.models import Response

from . import health
from .models import HealthBacktest

log = logging.getLogger("closeloop.insights")

HORIZON = timedelta(days=90)
MAX_MONTHS = 24
FIRST_AFTER = timedelta(days=90)  # a month scored needs this much answer history before it
FEW_CHURNS = 5  # a month with fewer churned accounts shows no AUC of its own
MIN_CHURNED = 50
POINTS_PER_LOGIT = 15
FOLDS = 5
BOOTSTRAP = 400


@dataclass(frozen=True)
class Row:
    account_id: int
    score: int
    nps: float | None
    signals: frozenset[str]
    churned: bool


@dataclass(frozen=True)
class Figure:
    auc: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Month:
    at: datetime
    accounts: int
    churned: int
    health: float | None
    nps: float | None
    fitted: float | None = None


def moments(now: datetime | None = None) -> list[datetime]:
    """The first moment of each month the backtest scores, oldest first."""
    now = now or timezone.now()
    first = Response.objects.filter(created_at__lte=now).aggregate(first=Min("created_at"))
    if first["first"] is None:
        return []
    start, end = first["first"] + FIRST_AFTER, now - HORIZON
    found = []
    at = datetime(start.year, start.month, 1, tzinfo=UTC)
    if at < start:
        at = _next_month(at)
    while at <= end:
        found.append(at)
        at = _next_month(at)
    return found[-MAX_MONTHS:]


def _next_month(at: datetime) -> datetime:
    return at.replace(year=at.year + at.month // 12, month=at.month % 12 + 1)


def snapshot(at: datetime) -> list[Row]:
    """Every account that was a customer at `at`, scored as it stood then (with the
    written weights; `risk_of` reads any other weights from the signals)."""
    end = at + HORIZON
    return [
        Row(
            account_id=h.account.pk,
            score=h.score,
            nps=getattr(h.account, "nps_mean", None),
            signals=frozenset(h.signals),
            churned=h.account.churned_at is not None and at < h.account.churned_at <= end,
        )
        for h in health.scores(None, at, weights=health.WEIGHTS)
    ]


def risk_of(rows: list[Row], weights: dict[str, int]) -> np.ndarray:
    """Risk as the points those weights take (the score before its floor at 0)."""
    return np.array([-sum(weights.get(s, 0) for s in r.signals) for r in rows], dtype=float)


def nps_risk(rows: list[Row]) -> np.ndarray:
    """NPS alone as a risk (a lower mean is riskier); no answer sits at the mean."""
    known = [r.nps for r in rows if r.nps is not None]
    middle = sum(known) / len(known) if known else 0.0
    return np.array([-(r.nps if r.nps is not None else middle) for r in rows], dtype=float)


def auc(risk: Any, churned: Any) -> float | None:
    """The chance a churned row is riskier than a staying one (ties count half); None
    without both kinds of row."""
    from sklearn.metrics import roc_auc_score

    churned = np.asarray(churned, dtype=bool)
    if churned.all() or not churned.any():
        return None
    return float(roc_auc_score(churned, np.asarray(risk, dtype=float)))


def _intervals(
    groups: np.ndarray, churned: np.ndarray, first: np.ndarray, second: np.ndarray, seed: int = 7
) -> tuple[Figure, Figure, Figure]:
    """Each risk's AUC and the first's gain over the second, with 95% intervals from a
    bootstrap that resamples whole accounts."""
    rng = np.random.default_rng(seed)
    accounts, where = np.unique(groups, return_inverse=True)
    index = [np.flatnonzero(where == i) for i in range(len(accounts))]
    draws: list[tuple[float, float]] = []
    for _ in range(BOOTSTRAP):
        picked = np.concatenate([index[i] for i in rng.integers(0, len(accounts), len(accounts))])
        a, b = auc(first[picked], churned[picked]), auc(second[picked], churned[picked])
        if a is not None and b is not None:
            draws.append((a, b))
    a, b = auc(first, churned), auc(second, churned)
    if a is None or b is None:
        return Figure(None), Figure(None), Figure(None)
    if not draws:
        return Figure(a), Figure(b), Figure(a - b)
    d = np.array(draws)

    def spread(values: np.ndarray) -> tuple[float, float]:
        return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))

    return (
        Figure(a, *spread(d[:, 0])),
        Figure(b, *spread(d[:, 1])),
        Figure(a - b, *spread(d[:, 0] - d[:, 1])),
    )


@dataclass
class Fit:
    """The fitted weights, how they and the written ones rank churn out of fold, and
    whether they are put in use (and why not)."""

    weights: dict[str, int] = field(default_factory=dict)
    fitted_auc: float | None = None
    written_auc: float | None = None
    in_use: bool = False
    why: str = ""
    out_of_fold: np.ndarray | None = None


def _points(coefficients: Any) -> dict[str, int]:
    return {
        key: -round(POINTS_PER_LOGIT * max(0.0, float(c)))
        for key, c in zip(health.WEIGHTS, coefficients, strict=True)
    }


def fit(rows: list[Row]) -> Fit:
    """Fit the signals' weights on the backtest's rows (see the module's docstring)."""
    churned = len({r.account_id for r in rows if r.churned})
    if churned < MIN_CHURNED:
        return Fit(
            why=f"the fitted model needs {MIN_CHURNED} churned accounts in the backtest; "
            f"it has {churned}"
        )
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    keys = list(health.WEIGHTS)
    x = np.array([[k in r.signals for k in keys] for r in rows], dtype=float)
    y = np.array([r.churned for r in rows], dtype=bool)
    groups = np.array([r.account_id for r in rows])
    out_of_fold = np.zeros(len(rows))
    for train, test in GroupKFold(n_splits=FOLDS).split(x, y, groups):
        if len(set(y[train])) < 2:
            continue
        model = LogisticRegression(max_iter=1000).fit(x[train], y[train])
        out_of_fold[test] = risk_of([rows[i] for i in test], _points(model.coef_[0]))
    model = LogisticRegression(max_iter=1000).fit(x, y)
    found = Fit(
        weights=_points(model.coef_[0]),
        fitted_auc=auc(out_of_fold, y),
        written_auc=auc(risk_of(rows, health.WEIGHTS), y),
        out_of_fold=out_of_fold,
    )
    if found.fitted_auc is None or found.written_auc is None:
        found.why = "the backtest has no churned account, or only churned ones"
    elif found.fitted_auc < found.written_auc:
        found.why = (
            f"out of fold the fitted weights rank churn worse ({found.fitted_auc:.3f}) "
            f"than the written ones ({found.written_auc:.3f})"
        )
    else:
        found.in_use = True
    return found


@dataclass
class Result:
    months: list[Month] = field(default_factory=list)
    health: Figure = Figure(None)  # the weights in use
    nps: Figure = Figure(None)
    gain: Figure = Figure(None)  # health − NPS alone
    rows: int = 0
    churned_accounts: int = 0
    fit: Fit = field(default_factory=Fit)


def run(now: datetime | None = None) -> Result:
    """The backtest over the past months, and the model fitted on it."""
    snapshots = [(at, snapshot(at)) for at in moments(now)]
    rows = [row for _, month in snapshots for row in month]
    fitted = fit(rows)
    result = Result(rows=len(rows), fit=fitted)
    result.churned_accounts = len({r.account_id for r in rows if r.churned})
    written = risk_of(rows, health.WEIGHTS)
    in_use = fitted.out_of_fold if fitted.in_use and fitted.out_of_fold is not None else written
    by_nps = np.concatenate([nps_risk(month) for _, month in snapshots] or [np.zeros(0)])
    churned = np.array([r.churned for r in rows], dtype=bool)
    start = 0
    for at, month in snapshots:
        part = slice(start, start + len(month))
        start += len(month)
        n = int(churned[part].sum())
        few = n < FEW_CHURNS
        oof = fitted.out_of_fold
        result.months.append(
            Month(
                at=at,
                accounts=len(month),
                churned=n,
                health=None if few else auc(written[part], churned[part]),
                nps=None if few else auc(by_nps[part], churned[part]),
                fitted=None if few or oof is None else auc(oof[part], churned[part]),
            )
        )
    if rows:
        groups = np.array([r.account_id for r in rows])
        result.health, result.nps, result.gain = _intervals(groups, churned, in_use, by_nps)
    return result


def as_json(result: Result) -> dict[str, Any]:
    """What a HealthBacktest row keeps of a run."""

    def figure(f: Figure) -> dict[str, float | None]:
        return {"auc": f.auc, "low": f.low, "high": f.high}

    return {
        "months": [
            {
                "at": m.at.isoformat(),
                "accounts": m.accounts,
                "churned": m.churned,
                "health": m.health,
                "nps": m.nps,
                "fitted": m.fitted,
            }
            for m in result.months
        ],
        "health": figure(result.health),
        "nps": figure(result.nps),
        "gain": figure(result.gain),
        "rows": result.rows,
        "churned_accounts": result.churned_accounts,
        "fit": {
            "weights": result.fit.weights,
            "fitted_auc": result.fit.fitted_auc,
            "written_auc": result.fit.written_auc,
            "in_use": result.fit.in_use,
            "why": result.fit.why,
        },
    }


def from_json(data: dict[str, Any]) -> Result:
    """A stored run as the page reads it (`as_json`'s inverse, without the rows)."""

    def figure(f: dict[str, Any] | None) -> Figure:
        f = f or {}
        return Figure(f.get("auc"), f.get("low"), f.get("high"))

    fitted = data.get("fit") or {}
    return Result(
        months=[
            Month(
                at=datetime.fromisoformat(m["at"]),
                accounts=m["accounts"],
                churned=m["churned"],
                health=m.get("health"),
                nps=m.get("nps"),
                fitted=m.get("fitted"),
            )
            for m in data.get("months", [])
        ],
        health=figure(data.get("health")),
        nps=figure(data.get("nps")),
        gain=figure(data.get("gain")),
        rows=data.get("rows", 0),
        churned_accounts=data.get("churned_accounts", 0),
        fit=Fit(
            weights=fitted.get("weights") or {},
            fitted_auc=fitted.get("fitted_auc"),
            written_auc=fitted.get("written_auc"),
            in_use=bool(fitted.get("in_use")),
            why=fitted.get("why", ""),
        ),
    )


def request(user: Any = None) -> HealthBacktest:
    """Ask the worker for a run (the one already waiting, if any)."""
    waiting = HealthBacktest.objects.filter(started_at__isnull=True).order_by("pk").first()
    return waiting or HealthBacktest.objects.create(requested_by=user)


def handle_health_backtest() -> bool:
    """Run the waiting backtest, asking for this month's first when none was asked for
    since the 1st. The update that sets `started_at` is the claim among workers."""
    now = timezone.now()
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if not HealthBacktest.objects.filter(requested_at__gte=month).exists():
        request()
    waiting = HealthBacktest.objects.filter(started_at__isnull=True).order_by("pk").first()
    if waiting is None:
        return False
    if not HealthBacktest.objects.filter(pk=waiting.pk, started_at__isnull=True).update(
        started_at=now
    ):
        return True
    try:
        result = run(now)
    except Exception as error:  # kept on the row and shown; the weights in use stay
        log.exception("health backtest %s failed", waiting.pk)
        HealthBacktest.objects.filter(pk=waiting.pk).update(
            finished_at=timezone.now(), error=f"{type(error).__name__}: {error}"
        )
        return True
    HealthBacktest.objects.filter(pk=waiting.pk).update(
        finished_at=timezone.now(),
        result=as_json(result),
        weights=result.fit.weights,
        in_use=result.fit.in_use,
    )
    return True
