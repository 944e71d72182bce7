"""Request bodies, checked field by field: unknown fields and NUL characters are refused by
name, on every database (PostgreSQL cannot store NUL in text or JSON)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class RefusesNul(BaseModel):
    """Input whose fields may hold no NUL character, refused by the field's name."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text or JSON; refuse it here, by field, on every database.
        if has_nul(value):
            raise ValueError("must not contain the NUL character (\\u0000)")
        return value


class StrictSchema(RefusesNul):
    """A body whose unknown fields and NUL characters are refused, each by its name."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


NUL_REFUSAL = "holds a NUL character (\\u0000), which cannot be stored"


def has_nul(value: Any) -> bool:
    """Whether a text, or any key or value of a dict, list or tuple within it, holds NUL.
    Other values (numbers, nested models, which check their own fields) hold none."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False
