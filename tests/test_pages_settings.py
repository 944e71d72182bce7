"""Admin pages for the follow-up: the triage policy, routing and teams, channels, templates."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client

from closeloop.delivery.models import Channel
from closeloop.loop.models import OutreachTemplate, RoutingRule, TriagePolicy
from closeloop.loop.policy import Action
from closeloop.surveys.models import Account
from closeloop.team.models import Team, User

from .conftest import ApiClient, open_case

pytestmark = pytest.mark.django_db


def as_user(user: User, password: str) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


class FormFields(HTMLParser):
    """What a browser would post from the page's `form.settings`, untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}
        self.inside = False
        self.select: str | None = None
        self.first_option: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "settings" in a.get("class", ""):
            self.inside = True
        if not self.inside or (tag != "option" and "name" not in a):
            return
        if tag == "input" and a["name"] != "csrfmiddlewaretoken":
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.data.setdefault(a["name"], []).append(a.get("value", "on"))
            else:
                self.data[a["name"]] = a.get("value", "")
        elif tag == "select":
            self.select, self.first_option = a["name"], None
        elif tag == "option" and self.select:
            if self.first_option is None:
                self.first_option = a.get("value", "")
            if "selected" in a:
                self.data[self.select] = a.get("value", "")
        elif tag == "textarea":
            self.textarea = a["name"]
            self.data[a["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select:
            self.data.setdefault(self.select, self.first_option or "")
            self.select = None
        elif tag == "textarea":
            self.textarea = None
        elif tag == "form":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.data[self.textarea] += data


def policy_form(client: Client) -> dict[str, Any]:
    """The policy page's form as a browser would post it unchanged."""
    parser = FormFields()
    parser.feed(client.get("/settings/follow-up/").content.decode())
    assert parser.data
    return parser.data


def test_it_saves_the_policy_form_as_a_new_version_unchanged_or_edited(
    admin_user: User,
) -> None:
    client = as_user(admin_user, "pw-admin-123")
    before = TriagePolicy.current()
    data = policy_form(client)
    assert client.post("/settings/follow-up/", data).status_code == 302
    same = TriagePolicy.current()
    assert same.version == before.version + 1 and same.rules == before.rules
    data["matrix.moderate.standard"] = Action.PERSONAL_EMAIL_QUESTIONS.value
    data["sla_default"] = "36"
    data["sponsor_arr_at_least"] = ""
    data["sponsor_tiers"] = "enterprise, strategic"
    data["playbook.4"] = "Acknowledge.\n\nAsk for specifics.\n"
    client.post("/settings/follow-up/", data)
    rules = TriagePolicy.current().rules
    assert rules.matrix["moderate"].standard == Action.PERSONAL_EMAIL_QUESTIONS  # type: ignore[index]
    assert rules.sla_hours.default == 36 and rules.playbook(4) == [
        "Acknowledge.",
        "Ask for specifics.",
    ]
    assert rules.executive_sponsor.arr_at_least is None
    assert rules.executive_sponsor.tiers == ["enterprise", "strategic"]
    assert TriagePolicy.current().created_by == admin_user
    # The detractor types' steps and deadlines, and the acknowledgement switch.
    data["type_playbook.loyal"] = "Thank them.\n"
    data["type_sla.evaluating"] = "36"
    data["type_sla.leaving"] = ""
    data.pop("acknowledge_personal", None)
    data["max_open_personal_cases"] = "12"
    client.post("/settings/follow-up/", data)
    rules = TriagePolicy.current().rules
    assert rules.max_open_personal_cases == 12
    assert rules.type_playbooks["loyal"] == ["Thank them."]
    assert rules.type_sla_hours == {"evaluating": 36}
    assert rules.acknowledge_personal is False


def test_it_names_the_field_when_the_policy_form_is_wrong(admin_user: User) -> None:
    client = as_user(admin_user, "pw-admin-123")
    version = TriagePolicy.current().version
    data = policy_form(client)
    data.update({"sla_default": "0", "bh_start": "18:00", "bh_end": "09:00", "bh_enabled": "on"})
    reply = client.post("/settings/follow-up/", data)
    page = reply.content.decode()
    assert reply.status_code == 422
    assert "sla_hours.default: Input should be greater than or equal to 1" in page
    assert "business_hours.end must be after business_hours.start" in page
    assert TriagePolicy.current().version == version


def test_it_manages_teams_rules_and_channels_from_the_pages(
    admin_user: User, agent: User, manager: User
) -> None:
    client = as_user(admin_user, "pw-admin-123")
    client.post(
        "/settings/routing/",
        {"action": "save_team", "name": "SMB desk", "members": [agent.email, manager.email]},
    )
    team = Team.objects.get(name="SMB desk")
    assert set(team.members.all()) == {agent, manager}
    client.post(
        "/settings/routing/",
        {"action": "add_rule", "name": "Small ones", "tiers": "smb", "team": "SMB desk"},
    )
    rule = RoutingRule.objects.get()
    assert rule.tiers == ["smb"] and rule.team == team
    bad = client.post("/settings/routing/", {"action": "add_rule", "name": "x", "team": "Nope"})
    assert "team: no team is named" in client.get(bad["Location"]).content.decode()
    client.post(
        "/settings/channels/",
        {"kind": "slack", "target": "https://hooks.example.com/T1", "bands": ["severe"]},
    )
    assert Channel.objects.get().bands == ["severe"]
    client.post("/settings/channels/", {"kind": "webhook", "target": "ftp://nope"})
    page = client.get("/settings/channels/").content.decode()
    assert "url: must be an http(s) URL" in page and Channel.objects.count() == 1
    client.post("/settings/channels/", {"action": "delete", "channel": Channel.objects.get().pk})
    assert not Channel.objects.exists()


def test_it_blocks_an_automated_template_that_breaks_the_rules_and_saves_a_good_one(
    admin_user: User,
) -> None:
    client = as_user(admin_user, "pw-admin-123")
    url = "/settings/templates/automated_brief_question/en/"
    listing = client.get("/settings/templates/").content.decode()
    assert url in listing and "finding(s)" not in listing  # the shipped defaults pass
    bad = client.post(
        url, {"subject": "Sorry!", "body": "We are so sorry. Would you rate us 9 or 10?"}
    )
    assert bad.status_code == 422 and "Not saved" in bad.content.decode()
    assert not OutreachTemplate.objects.exists()
    good = (
        "Hi {first_name},\n\nThanks for your {score} out of 10. What was the main reason "
        "behind your score?\n\n{owner_name}"
    )
    assert client.post(url, {"subject": "Your {score}/10", "body": good}).status_code == 302
    assert OutreachTemplate.objects.get().body == good
    jump = client.get("/settings/templates/", {"action_": "call", "locale": "es"})
    assert jump["Location"] == "/settings/templates/call/es/"


def test_it_keeps_the_settings_pages_to_admins(agent: User) -> None:
    client = as_user(agent, "pw-alex-123")
    for path in ("/settings/follow-up/", "/settings/routing/", "/settings/channels/"):
        assert client.get(path).status_code == 403


def test_it_answers_garbage_ids_in_forms_without_a_server_error(
    admin_user: User, api: ApiClient, smb: Account
) -> None:
    client = as_user(admin_user, "pw-admin-123")
    case = open_case(api, smb, 3)
    huge, word = "9" * 30, "abc"
    for bad in (huge, word):
        assert (
            client.post("/settings/routing/", {"action": "delete_rule", "rule": bad}).status_code
            == 404
        )
        assert (
            client.post("/settings/channels/", {"action": "delete", "channel": bad}).status_code
            == 404
        )
        assert client.post("/settings/quarantine/", {"message": bad}).status_code == 404
        for form in (
            {"action": "task_done", "task": bad},
            {"action": "assign", "owner": bad},
            {"action": "watch", "user": bad},
            {"action": "announce", "announcement": bad},
        ):
            reply = client.post(f"/cases/{case.pk}/act", form)
            assert reply.status_code == 302, (form, reply.status_code)
        made = client.post("/announcements/", {"title": "x", "case_ids": huge})
        assert made.status_code == 422
