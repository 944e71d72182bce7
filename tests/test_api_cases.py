"""API v1 for cases, channels, routing rules, the triage policy and templates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from closeloop.loop.models import TriagePolicy
from closeloop.surveys.models import Account
from closeloop.team.models import User

from .conftest import ApiClient, open_case

pytestmark = pytest.mark.django_db


def detractor(
    api: ApiClient, account: Account, email: str = "pat@example.com", score: int = 3
) -> int:
    return open_case(api, account, score, email).pk


def test_it_finds_a_persons_cases_by_email(api: ApiClient, enterprise: Account) -> None:
    case_id = detractor(api, enterprise)
    detractor(api, enterprise, email="other@example.com")
    body = api.get_json("/api/v1/cases", {"email": "Pat@Example.com"}).json()
    assert body["count"] == 1
    (case,) = body["results"]
    assert case["id"] == case_id and case["status"] == "open"
    assert case["owner"]["email"] == "alex@example.com"
    assert case["action"] == "personal_email_questions" and case["priority"] > 0
    assert case["due_at"] is not None


def test_it_lists_cases_by_priority_with_filters(
    api: ApiClient, enterprise: Account, smb: Account
) -> None:
    detractor(api, smb, email="small@example.com")
    detractor(api, enterprise, email="big@example.com")
    results = api.get_json("/api/v1/cases", {"status": "active"}).json()["results"]
    assert [c["person"]["email"] for c in results] == ["big@example.com", "small@example.com"]
    assert api.get_json("/api/v1/cases", {"tier": "smb"}).json()["count"] == 1
    assert api.get_json("/api/v1/cases", {"overdue": "true"}).json()["count"] == 0
    assert api.get_json("/api/v1/cases", {"unassigned": "true"}).json()["count"] == 0


def test_it_refuses_an_unknown_filter_value(api: ApiClient) -> None:
    r = api.get_json("/api/v1/cases", {"status": "pending"})
    assert r.status_code == 422 and "status" in str(r.json()["detail"])


def test_it_runs_a_case_through_note_call_close_and_reopen(
    api: ApiClient, enterprise: Account
) -> None:
    case_id = detractor(api, enterprise)
    base = f"/api/v1/cases/{case_id}"
    assert api.post_json(f"{base}/notes", {"text": "Checked their tickets"}).status_code == 200
    r = api.post_json(f"{base}/calls", {"outcome": "talked", "note": "Export bug"})
    assert r.json()["status"] == "in_conversation" and r.json()["first_touch_at"]
    r = api.post_json(f"{base}/close", {"resolution": "resolved", "reason": "", "note": "x"})
    assert r.status_code == 422 and "reason" in str(r.json())
    r = api.post_json(
        f"{base}/close", {"resolution": "resolved", "reason": "fix shipped", "note": "v2.3"}
    )
    assert r.json()["status"] == "closed" and r.json()["resolution"] == "resolved"
    r = api.post_json(f"{base}/reopen", {"reason": "still broken"})
    assert r.json()["status"] == "in_conversation"
    kinds = [a["kind"] for a in api.get_json(base).json()["activities"]]
    assert kinds == [
        "created",
        "assigned",
        "note",
        "call_logged",
        "status_change",
        "status_change",
        "note",  # the check-back scheduled by resolving it
        "reopened",
    ]


def test_it_reassigns_and_refuses_an_unknown_owner(
    api: ApiClient, enterprise: Account, manager: User
) -> None:
    case_id = detractor(api, enterprise)
    r = api.post_json(f"/api/v1/cases/{case_id}/assign", {"owner": "nobody@example.com"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "owner"]
    r = api.post_json(f"/api/v1/cases/{case_id}/assign", {"owner": manager.email, "note": "VIP"})
    assert r.json()["owner"]["email"] == manager.email


def test_it_records_a_commitment_as_a_task(api: ApiClient, enterprise: Account) -> None:
    case_id = detractor(api, enterprise)
    due = (timezone.now() + timedelta(days=3)).isoformat()
    r = api.post_json(
        f"/api/v1/cases/{case_id}/commitments", {"promise": "Ship CSV fix", "due_at": due}
    )
    assert r.status_code == 200
    assert [t["title"] for t in r.json()["tasks"]] == ["Ship CSV fix"]
    past = (timezone.now() - timedelta(days=1)).isoformat()
    r = api.post_json(f"/api/v1/cases/{case_id}/commitments", {"promise": "x", "due_at": past})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "due_at"]


def test_it_refuses_writes_with_a_read_only_key(
    api: ApiClient, read_only_api: ApiClient, enterprise: Account
) -> None:
    case_id = detractor(api, enterprise)
    r = read_only_api.post_json(f"/api/v1/cases/{case_id}/notes", {"text": "hi"})
    assert r.status_code == 403
    assert read_only_api.get_json(f"/api/v1/cases/{case_id}").status_code == 200


def test_it_answers_404_for_an_unknown_case(api: ApiClient) -> None:
    assert api.get_json("/api/v1/cases/999999").status_code == 404
    assert api.post_json("/api/v1/cases/999999/notes", {"text": "x"}).status_code == 404


def test_it_manages_channels_and_checks_their_targets(api: ApiClient) -> None:
    body: dict[str, Any] = {
        "kind": "slack",
        "url": "https://hooks.example.com/T1",
        "bands": ["severe"],
    }
    r = api.post_json("/api/v1/channels", body)
    assert r.status_code == 201 and r.json()["events"] == [
        "case.created",
        "case.escalated",
        "case.urgent",
        "conversation.completed",
    ]
    r = api.post_json("/api/v1/channels", {"kind": "webhook", "url": "ftp://x"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "url"]
    r = api.post_json("/api/v1/channels", {"kind": "email"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "email"]
    r = api.post_json(
        "/api/v1/channels", {"kind": "webhook", "url": "https://x.example", "events": ["nope"]}
    )
    assert r.status_code == 422 and "unknown event" in str(r.json())
    r = api.post_json("/api/v1/channels", {"kind": "sms", "url": "https://x.example"})
    assert r.status_code == 422
    channels = api.get_json("/api/v1/channels").json()
    assert len(channels) == 1
    assert (
        api.delete(
            f"/api/v1/channels/{channels[0]['id']}", HTTP_AUTHORIZATION=f"Bearer {api.key}"
        ).status_code
        == 204
    )


def test_it_manages_teams_and_routing_rules(api: ApiClient, agent: User) -> None:
    r = api.client_put("/api/v1/teams", {"name": "Support", "members": [agent.email]})
    assert r.status_code == 200 and r.json()["members"] == [agent.email]
    r = api.post_json("/api/v1/routing-rules", {"name": "SMB", "tiers": ["smb"], "team": "Nope"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "team"]
    r = api.post_json("/api/v1/routing-rules", {"name": "SMB", "tiers": ["smb"], "team": "Support"})
    assert r.status_code == 201 and r.json()["team"] == "Support"


def test_it_versions_the_triage_policy_and_validates_it(api: ApiClient) -> None:
    current = api.get_json("/api/v1/triage-policy").json()
    assert current["version"] == 1
    config = current["config"]
    config["sla_hours"]["default"] = 36
    r = api.client_put("/api/v1/triage-policy", config)
    assert r.status_code == 200 and r.json()["version"] == 2
    assert TriagePolicy.current().rules.sla_hours.default == 36
    del config["matrix"]["mild"]
    r = api.client_put("/api/v1/triage-policy", config)
    assert r.status_code == 422 and "mild" in str(r.json())
    config["matrix"]["mild"] = {"high_value": "call", "standard": "telepathy"}
    assert api.client_put("/api/v1/triage-policy", config).status_code == 422
    assert TriagePolicy.objects.count() == 2


def test_it_blocks_an_automated_template_that_breaks_the_rules(api: ApiClient) -> None:
    bad = {
        "subject": "Sorry!",
        "body": "Hi {first_name}, we are sorry. Would you give us a 9 or 10?",
    }
    r = api.client_put("/api/v1/templates/automated_brief_question/en", bad)
    assert r.status_code == 422
    messages = " ".join(d["msg"] for d in r.json()["detail"])
    for rule in ("score", "apology", "score-begging", "open-question", "sender"):
        assert rule in messages
    # A personal template is saved, with the findings as advice.
    r = api.client_put("/api/v1/templates/call/en", bad)
    assert r.status_code == 200 and r.json()["findings"]
    assert api.get_json("/api/v1/templates/call/en").json()["subject"] == "Sorry!"
    r = api.client_put("/api/v1/templates/call/en", {"subject": "x", "body": "{oops}"})
    assert r.status_code == 422
