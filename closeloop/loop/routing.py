"""Who owns a new case: the account's owner; else the first matching routing rule's team,
round-robin among its agents; else nobody (the unassigned queue, watched by managers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from closeloop.surveys.models import Account, Person
from closeloop.team.models import Team, User

from .models import RoutingRule


@dataclass(frozen=True)
class Route:
    owner: User | None
    team: Team | None
    why: str


def route(account: Account | None, person: Person, rules: Sequence[RoutingRule]) -> Route:
    """Decide the owner of a case for an answer from `person` at `account`."""
    if account is not None and account.owner is not None and account.owner.is_active:
        return Route(account.owner, None, "account owner")
    for rule in rules:
        if not rule.active or not rule.matches(account, person):
            continue
        user = rule.team.next_assignee()
        if user is not None:
            return Route(user, rule.team, f"rule “{rule.name}”: {rule.team.name}, round-robin")
    return Route(None, None, "no account owner and no routing rule matched: unassigned queue")
