"""The one error for input that cannot be used: which field, and why.

Every entry point (API, forms, CSV rows, filters, calculators) refuses bad input by
raising FieldError; the API turns it into one 4xx shape (`api/v1.py`) and pages show
its reason beside the field. `field` is dotted for nested input ("items.3.email").
"""

from __future__ import annotations

from typing import ClassVar, Literal

Where = Literal["body", "query"]


class FieldError(ValueError):
    """`field` cannot be used for `reason`; `where` says which part of a request held it.

    `also` carries further (field, reason) pairs when one check finds several problems
    (a template breaking more than one rule), so they are reported together.
    """

    status: ClassVar[int] = 422

    def __init__(
        self,
        field: str,
        reason: str,
        *,
        where: Where = "body",
        also: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason
        self.where = where
        self.also = also or []

    @property
    def problems(self) -> list[tuple[str, str]]:
        """Every (field, reason) this error names, the first one first."""
        return [(self.field, self.reason), *self.also]


class ConcurrentWriteError(FieldError):
    """Other requests kept writing the same rows; the same request later will work."""

    status: ClassVar[int] = 409

    def __init__(self) -> None:
        super().__init__("", "conflicted with concurrent writes of the same rows; retry")
