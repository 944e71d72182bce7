"""Who owns a new case: the account's owner; else the first matching routing rule's team,
round-robin among its agents; else nobody (the unassigned queue, watched by managers).

With a capacity (policy `max_open_personal_cases`), a case that waits for a person goes
past anyone already holding that many open personal cases: an account owner at capacity
hands it to the routing rules, a full team member is skipped, and when the whole team is
full it goes to the team's lead (its manager), else to the unassigned queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from closeloop.surveys.models import Account, Person
from closeloop.team.models import Team, User

from .models import RoutingRule


@dataclass(frozen=True)
class Route:
    owner: User | None
    team: Team | None
    why: str


@dataclass
class Capacity:
    """How many open personal cases each owner holds, against the policy's maximum."""

    limit: int | None = None
    load: dict[int, int] = field(default_factory=dict)

    def full(self) -> set[int]:
        if self.limit is None:
            return set()
        return {pk for pk, n in self.load.items() if n >= self.limit}

    def took(self, user: User | None) -> None:
        if user is not None:
            self.load[user.pk] = self.load.get(user.pk, 0) + 1


def route(
    account: Account | None,
    person: Person,
    rules: Sequence[RoutingRule],
    capacity: Capacity | None = None,
) -> Route:
    """Decide the owner of a case for an answer from `person` at `account`; `capacity`
    only for a case that waits for a person (see the module's docstring)."""
    full = capacity.full() if capacity is not None else set()
    passed = ""
    if account is not None and account.owner is not None and account.owner.is_active:
        if account.owner.pk not in full:
            return Route(account.owner, None, "account owner")
        passed = f"account owner {account.owner.display_name} at capacity; "
    for rule in rules:
        if not rule.active or not rule.matches(account, person):
            continue
        user = rule.team.next_assignee(skip=full)
        if user is not None:
            return Route(
                user, rule.team, f"{passed}rule “{rule.name}”: {rule.team.name}, round-robin"
            )
        lead = rule.team.lead() if full else None
        if lead is not None:
            return Route(
                lead,
                rule.team,
                f"{passed}rule “{rule.name}”: {rule.team.name} all at capacity, team lead",
            )
    if passed:
        return Route(None, None, f"{passed}no routing rule had room: unassigned queue")
    return Route(None, None, "no account owner and no routing rule matched: unassigned queue")
