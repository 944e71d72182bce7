"""Discovery: the comments the model could not place are grouped by meaning, and large
groups are offered as new themes for an admin to accept (a theme with examples) or
dismiss."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from closeloop.core.periods import today
from closeloop.management.demo import EMERGING_PHRASES
from closeloop.surveys.models import Response
from closeloop.team.models import User
from closeloop.themes import discovery
from closeloop.themes.models import (
    Theme,
    ThemeCandidate,
    ThemeDiscovery,
    ThemeExample,
    ThemeTraining,
)

from .conftest import ApiClient, answer, drain

pytestmark = pytest.mark.django_db

PLACED = [
    "We were charged twice and nobody refunded us",
    "Support took a week to reply",
    "The dashboard takes forever to load",
    "Please add an audit log",
    "The Salesforce sync drops fields",
    "Too expensive for a small team",
]
OPENERS = ["", "Honestly, ", "Hmm. "]


def _answers(api: ApiClient) -> None:
    comments = [o + p for p in EMERGING_PHRASES[:6] for o in OPENERS]
    comments += [*PLACED, "Love it, great tool", "Fantastic product"]
    for i, comment in enumerate(comments):
        body = answer(email=f"p{i}@example.com", score=4, comment=comment)
        assert api.post_json("/api/v1/responses", body).status_code == 201


def test_it_proposes_a_theme_from_comments_the_model_could_not_place(api: ApiClient) -> None:
    _answers(api)
    drain()  # the worker reads the comments first
    run = discovery.request_discovery(today() - timedelta(days=6), today())
    drain()
    run.refresh_from_db()
    assert run.status == "done" and run.comments >= 10
    candidates = list(run.candidates.all())
    assert candidates
    top = candidates[0]
    members = Response.objects.filter(pk__in=top.response_ids)
    assert all("AI" in r.comment or "copilot" in r.comment.lower() for r in members)
    assert top.size == len(top.response_ids) >= discovery.MIN_GROUP
    # Its words are written as the comments write them ("AI", not "ai").
    assert all(any(k in r.comment for r in members) for k in top.keywords)
    assert top.name.startswith(top.keywords[0][:1].upper())
    assert len(set(top.examples)) == len(top.examples) <= discovery.EXAMPLES
    # Praise and comments the model placed are not read.
    read = discovery.unclassified(today() - timedelta(days=6), today())
    assert not read.filter(comment__in=[*PLACED[:3], "Love it, great tool"]).exists()


def test_it_accepts_a_candidate_as_a_theme_with_examples(api: ApiClient, admin_user: User) -> None:
    _answers(api)
    drain()
    discovery.run(discovery.request_discovery(today() - timedelta(days=6), today()))
    candidate = ThemeCandidate.objects.order_by("-size").first()
    assert candidate is not None
    client = Client()
    client.login(username="admin", password="pw-admin-123")
    page = client.get("/settings/themes/").content.decode()
    assert candidate.examples[0] in page.replace("&#x27;", "'")
    r = client.post(
        "/settings/themes/",
        {"action": "accept", "candidate": candidate.pk, "name": "AI assistant"},
        follow=True,
    )
    assert "Theme AI assistant added" in r.content.decode()
    theme = Theme.objects.get(slug="ai-assistant")
    tagged = Response.objects.filter(theme_tags__theme=theme, theme_tags__source="person")
    assert set(tagged.values_list("pk", flat=True)) == set(candidate.response_ids)
    examples = ThemeExample.objects.filter(source="discovery")
    assert examples.count() == candidate.size
    assert all("ai-assistant" in e.themes for e in examples)
    assert ThemeTraining.objects.filter(status="queued").exists()
    candidate.refresh_from_db()
    assert candidate.status == "accepted" and candidate.theme == theme
    again = client.post(
        "/settings/themes/",
        {"action": "dismiss", "candidate": candidate.pk},
        follow=True,
    )
    assert "candidate: already accepted" in again.content.decode()


def test_it_dismisses_and_refuses_bad_discovery_requests(admin_user: User) -> None:
    run = ThemeDiscovery.objects.create(since=today(), until=today(), status="done")
    candidate = ThemeCandidate.objects.create(
        discovery=run, name="Noise", size=5, share=0.5, examples=["x"], response_ids=[]
    )
    client = Client()
    client.login(username="admin", password="pw-admin-123")
    r = client.post(
        "/settings/themes/", {"action": "dismiss", "candidate": candidate.pk}, follow=True
    )
    assert "Noise dismissed" in r.content.decode()
    for data, error in [
        ({"since": "2026-02-30", "until": "2026-03-01"}, "since: give a date"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "until: is before since"),
        ({"since": "2024-01-01", "until": "2026-03-01"}, "since: a period of at most a year"),
    ]:
        r = client.post("/settings/themes/", {"action": "discover", **data}, follow=True)
        assert error in r.content.decode()
    assert ThemeDiscovery.objects.count() == 1


def test_it_waits_for_the_worker_to_read_the_period_first(api: ApiClient) -> None:
    _answers(api)
    run = discovery.request_discovery(today() - timedelta(days=6), today())
    assert Response.objects.filter(themes_status="pending").exists()
    assert discovery.handle_theme_discovery() is False  # comments still being read
    drain()
    run.refresh_from_db()
    assert run.status == "done"


def test_it_discovers_accepts_and_dismisses_through_the_api(api: ApiClient) -> None:
    _answers(api)
    drain()
    since = (today() - timedelta(days=6)).isoformat()
    r = api.post_json("/api/v1/themes/discoveries", {"since": since, "until": today().isoformat()})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    drain()
    (run,) = api.get_json("/api/v1/themes/discoveries").json()
    assert run["status"] == "done" and run["candidates"]
    top = run["candidates"][0]
    r = api.post_json(f"/api/v1/themes/candidates/{top['id']}/accept", {"name": "AI features"})
    assert r.status_code == 201 and r.json()["slug"] == "ai-features"
    assert r.json()["answers"] == top["size"]
    r = api.post_json(f"/api/v1/themes/candidates/{top['id']}/dismiss", {})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "candidate"]
    bad = api.post_json(
        "/api/v1/themes/discoveries", {"since": "2026-05-02", "until": "2026-05-01"}
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "until"]


def test_it_fails_a_discovery_cut_off_with_its_worker(db: None) -> None:
    from django.utils import timezone

    from closeloop.core.reading import STALE_RUN

    cut_off = ThemeDiscovery.objects.create(
        since=today(), until=today(), status="running", started_at=timezone.now() - 2 * STALE_RUN
    )
    discovery.handle_theme_discovery()
    cut_off.refresh_from_db()
    assert (cut_off.status, cut_off.error) == ("failed", "interrupted")


def test_it_marks_a_discovery_that_raised_failed_with_the_reason(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = ThemeDiscovery.objects.create(
        since=today() - timedelta(days=30), until=today(), status="queued"
    )

    def broken(found: ThemeDiscovery) -> None:  # a fault inside the run, as a bug would raise
        raise RuntimeError("the clustering gave up")

    monkeypatch.setattr(discovery, "run", broken)
    assert discovery.handle_theme_discovery() is True
    queued.refresh_from_db()
    assert queued.status == "failed" and queued.finished_at is not None
    assert queued.error == "RuntimeError: the clustering gave up"


def test_it_pairs_only_words_that_stand_side_by_side() -> None:
    words = discovery._words("Answers that sound right but aren't")
    assert "sound right" in words and "right aren't" not in words
