"""What every integration asks of what a sender posts: a value of its JSON as text,
and which account a sender's customer is."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from closeloop.surveys.models import Account, Person


def account_for(ref: str, key: str, email: str) -> Account | None:
    """The account whose external id is `ref`, or that has `ref` mapped to it under
    the property `key` (e.g. a Stripe customer id); else the account of the person
    with `email`."""
    if ref:
        found = Account.objects.filter(
            Q(external_id=ref) | Q(**{f"properties__{key}": ref})
        ).first()
        if found is not None:
            return found
    if email:
        person = Person.objects.filter(email__iexact=email, account__isnull=False).first()
        if person is not None:
            return person.account
    return None


def text(value: Any, size: int = 255) -> str:
    """A JSON scalar (a string or a number) as stripped text of at most `size`
    characters; "" for null, true/false, an object or a list."""
    if value is None or isinstance(value, bool | dict | list):
        return ""
    return str(value).strip()[:size]
