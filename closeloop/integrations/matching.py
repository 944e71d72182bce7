"""Which account a sender's customer is: the one thing every integration asks."""

from __future__ import annotations

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
