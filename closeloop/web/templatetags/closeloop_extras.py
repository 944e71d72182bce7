"""Template filters shared by the pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template

register = template.Library()


@register.filter
def duration_short(value: timedelta | None) -> str:
    """A duration as people say it: '45m', '3h 20m', '2d 4h'; '' for None."""
    if value is None:
        return ""
    minutes = max(int(value.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    return f"{mins}m"


@register.filter
def money(cents: int | None, currency: str = "USD") -> str:
    """ARR in cents as 'USD 12,400'."""
    return f"{currency or 'USD'} {(cents or 0) / 100:,.0f}"


@register.filter
def get(mapping: dict[Any, Any] | None, key: Any) -> Any:
    """`mapping[key]`, or None: a dictionary read by a key the template holds."""
    return (mapping or {}).get(key)
