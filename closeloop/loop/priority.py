"""The priority score that orders every queue (0–100, higher first).

    priority = 40 · value + 25 · drop + 15 · severity + 10 · disengagement + 10 · recency

- value: log10(1 + ARR) / 6, capped at 1 — $1M ARR scores 1.0, $10k 0.67, nothing 0.
- drop: (previous score − score) / 10 when the person's previous answer was higher,
  else 0 — an 8 → 3 (0.5) ranks above a steady 3 (0).
- severity: (6 − score) / 6 for detractors, 0 for passives and promoters.
- disengagement: days since the person (or account) was last active, from a
  `last_active_at` / `last_seen_at` / `last_login_at` property: 0 up to 14 days,
  rising to 1 at 90 days; 0 when unknown.
- recency: 0.5 ^ (days since the latest answer / 7) — fresh answers first.

A case whose customer said something that cannot wait (churn intent, a competitor, a
request for a call, a legal or security complaint: its urgency is "high") gets
URGENT_BOOST more, capped at 100.

The worker refreshes open cases hourly, so recency keeps its meaning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

ENGAGEMENT_KEYS = ("last_active_at", "last_seen_at", "last_login_at")
WEIGHTS = {"value": 40, "drop": 25, "severity": 15, "disengagement": 10, "recency": 10}
URGENT_BOOST = 25


def last_active(*property_sets: Mapping[str, Any]) -> datetime | None:
    """The most recent activity date found in the given property sets."""
    found: list[datetime] = []
    for props in property_sets:
        for key in ENGAGEMENT_KEYS:
            value = props.get(key)
            if isinstance(value, str) and value.strip():
                parsed = _parse(value.strip())
                if parsed is not None:
                    found.append(parsed)
    return max(found) if found else None


def _parse(value: str) -> datetime | None:
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            parsed = datetime.combine(date.fromisoformat(value), time())
    except ValueError:
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_fixed_timezone(0))
    return parsed


def components(
    arr_cents: int,
    score: int | None,
    previous_score: int | None,
    active_at: datetime | None,
    answered_at: datetime,
    now: datetime | None = None,
) -> dict[str, float]:
    """Each factor of the formula, from 0 to 1."""
    now = now or timezone.now()
    arr = max(0, arr_cents) / 100
    idle_days = (now - active_at).total_seconds() / 86400 if active_at else 0.0
    age_days = max(0.0, (now - answered_at).total_seconds() / 86400)
    return {
        "value": min(1.0, math.log10(1 + arr) / 6),
        "drop": max(0, previous_score - score) / 10
        if previous_score is not None and score is not None
        else 0.0,
        "severity": (6 - score) / 6 if score is not None and score <= 6 else 0.0,
        "disengagement": min(1.0, max(0.0, (idle_days - 14) / 76)),
        "recency": 0.5 ** (age_days / 7),
    }


def priority(
    arr_cents: int,
    score: int | None,
    previous_score: int | None,
    active_at: datetime | None,
    answered_at: datetime,
    now: datetime | None = None,
    urgent: bool = False,
) -> float:
    """The weighted sum of the components, 0–100 (urgent cases boosted, see above)."""
    parts = components(arr_cents, score, previous_score, active_at, answered_at, now)
    total = sum(WEIGHTS[k] * v for k, v in parts.items()) + (URGENT_BOOST if urgent else 0)
    return round(min(100.0, total), 2)
