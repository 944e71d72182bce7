"""Reading the query parameters the insights take (grain, loop, grouping), one way for
the API, which refuses a bad value with a FieldError naming it, and for the pages,
which report it and carry on with the default (`or_default`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from closeloop.core.errors import FieldError
from closeloop.core.periods import Grain
from closeloop.loop.models import FollowUpCase

T = TypeVar("T")

LOOPS: tuple[str, ...] = tuple(FollowUpCase.Loop.values)  # detractor first: the default


def _either(choices: Sequence[str]) -> str:
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]


def choice(params: Mapping[str, str], name: str, default: str, choices: Sequence[str]) -> str:
    """`params[name]` if it is one of `choices`, `default` when it is empty."""
    value = params.get(name) or default
    if value not in choices:
        raise FieldError(name, f"must be {_either(choices)}", where="query")
    return value


def grain(params: Mapping[str, str]) -> Grain:
    """A trend's grain, `?grain=` (week, month or quarter; months by default)."""
    return Grain(choice(params, "grain", Grain.MONTH.value, [g.value for g in Grain]))


def loop(params: Mapping[str, str]) -> str:
    """Which loop's cases, `?loop=` (detractor by default)."""
    return choice(params, "loop", LOOPS[0], LOOPS)


def or_default(errors: list[str], read: Callable[[], T], default: T) -> T:
    """What `read()` finds, or `default` with the refusal added to `errors` ("field:
    reason"), for a page that shows what it could not use."""
    try:
        return read()
    except FieldError as exc:
        errors.append(f"{exc.field}: {exc.reason}")
        return default
