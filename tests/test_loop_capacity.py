"""Capacity: with a cap on open personal cases (calls, personal emails), routing passes
over an owner who is full, to the next in the team, to the team lead when all are full,
else to the unassigned queue; automated cases are not capped. The load shows on the case
page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from closeloop.loop.models import FollowUpCase, RoutingRule, TriagePolicy
from closeloop.loop.policy import PolicyConfig
from closeloop.surveys.models import Account
from closeloop.team.models import Membership, Role, Team, User

from .conftest import ApiClient, answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def capped(admin_user: User) -> None:
    config = PolicyConfig()
    config.max_open_personal_cases = 1
    TriagePolicy.save_new_version(config, admin_user)


def severe(api: ApiClient, n: int, account: Account | None = None, **extra: Any) -> FollowUpCase:
    person: dict[str, Any] = {"email": f"c{n}@example.com"}
    if account is not None:
        person["account"] = {"external_id": account.external_id}
    got = api.post_json("/api/v1/responses", answer(score=1, person=person, **extra))
    assert got.status_code == 201
    return FollowUpCase.objects.get(person__email=f"c{n}@example.com")


def test_it_passes_a_full_account_owner_to_the_team_then_its_lead(
    api: ApiClient, smb: Account, agent: User, manager: User, capped: None, viewer: User
) -> None:
    other = User.objects.create_user("sam", "sam@example.com", "pw-sam-12345", role=Role.AGENT)
    team = Team.objects.create(name="Support")
    for user in (other, manager):
        Membership.objects.create(team=team, user=user)
    RoutingRule.objects.create(name="everyone", team=team)
    first = severe(api, 1, smb)
    assert first.owner == agent and first.routed_by == "account owner"
    second = severe(api, 2, smb)  # the account owner holds one: full
    assert second.owner in (other, manager)
    assert second.routed_by.startswith(f"account owner {agent.display_name} at capacity")
    third = severe(api, 3, smb)
    assert {second.owner, third.owner} == {other, manager}
    fourth = severe(api, 4, smb)  # everyone full: the team's lead (its manager)
    assert fourth.owner == manager and "all at capacity, team lead" in fourth.routed_by
    # Automated cases are not capped: the account owner still takes them.
    mild = api.post_json(
        "/api/v1/responses",
        answer(
            score=5, person={"email": "m@example.com", "account": {"external_id": smb.external_id}}
        ),
    )
    assert mild.status_code == 201
    assert FollowUpCase.objects.get(person__email="m@example.com").owner == agent


def test_it_sends_to_the_unassigned_queue_when_no_rule_has_room(
    api: ApiClient, smb: Account, agent: User, capped: None
) -> None:
    severe(api, 1, smb)
    second = severe(api, 2, smb)
    assert second.owner is None and "unassigned queue" in second.routed_by


def test_it_does_not_cap_without_a_limit(api: ApiClient, smb: Account, agent: User) -> None:
    assert all(severe(api, n, smb).owner == agent for n in range(3))


def test_it_shows_each_owners_load_on_the_case_page(
    api: ApiClient, smb: Account, agent: User
) -> None:
    case = severe(api, 1, smb)
    severe(api, 2, smb)
    page = Client()
    page.force_login(agent)
    html = page.get(f"/cases/{case.pk}/").content.decode()
    assert f"{agent.display_name} (2 open personal)" in html
