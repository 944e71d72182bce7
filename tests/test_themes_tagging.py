"""The worker tags new comments after they are saved; a failing model leaves them
pending, retried, and finally failed in plain sight, never lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from closeloop.loop.intake import change_response
from closeloop.surveys.models import Account, Response
from closeloop.themes import classifier, learning, sentiment, tagging
from closeloop.themes import sentiment_training as st
from closeloop.themes.models import Theme, ThemeTag

from .conftest import ApiClient, answer, drain, open_case
from .test_themes_classifier import DEFAULT_THEMES

pytestmark = pytest.mark.django_db


def _post(api: ApiClient, email: str, comment: str, score: int = 3) -> Response:
    r = api.post_json("/api/v1/responses", answer(email=email, score=score, comment=comment))
    assert r.status_code == 201, r.content
    return Response.objects.get(pk=r.json()["id"])


def test_it_ships_the_default_themes_with_their_probes(db: None) -> None:
    slugs = set(Theme.objects.values_list("slug", flat=True))
    assert slugs == DEFAULT_THEMES
    assert all(t.probes and t.description for t in Theme.objects.all())


def test_it_tags_a_saved_comment_in_the_worker_with_the_models_version(api: ApiClient) -> None:
    saved = _post(api, "pat@example.com", "We were charged twice and the invoice has no PO number")
    silent = _post(api, "sam@example.com", "", score=9)
    # Saving did not wait for the classifier.
    assert (saved.themes_status, silent.themes_status) == ("pending", "")
    assert not ThemeTag.objects.exists()
    drain()
    saved.refresh_from_db()
    assert saved.themes_status == "done"
    tags = list(saved.theme_tags.select_related("theme"))
    assert "billing" in {t.theme.slug for t in tags}
    assert all(t.source == "model" and 0 < t.confidence <= 1 for t in tags)
    assert {t.model_version for t in tags} == {learning.current_model().version}
    assert not ThemeTag.objects.filter(response=silent).exists()


def test_it_reads_a_changed_comment_again(api: ApiClient) -> None:
    saved = _post(api, "pat@example.com", "Support never answers our tickets")
    drain()
    change_response(saved, comment="Way too expensive for what we use", via="api")
    saved.refresh_from_db()
    assert saved.themes_status == "pending"
    drain()
    assert {t.theme.slug for t in saved.theme_tags.select_related("theme")} == {"pricing"}


@pytest.fixture
def broken_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A classifier that was never fitted: predicting with it raises, as a broken model would."""
    broken = classifier.ThemeClassifier(
        ["bugs"], TfidfVectorizer(), TfidfVectorizer(), LogisticRegression()
    )
    monkeypatch.setattr(learning, "current_model", lambda: broken)


def test_it_keeps_answers_pending_and_retries_when_the_model_fails(
    api: ApiClient, broken_model: None
) -> None:
    saved = _post(api, "pat@example.com", "The export crashes every time")
    drain()
    saved.refresh_from_db()
    assert saved.themes_status == "pending" and saved.themes_attempts == 1
    assert "NotFitted" in saved.themes_error
    assert saved.themes_next_at is not None and saved.themes_next_at > timezone.now()
    for _ in range(tagging.MAX_ATTEMPTS):
        assert saved.themes_next_at is not None
        with time_machine.travel(saved.themes_next_at + timedelta(seconds=1), tick=False):
            drain()
        saved.refresh_from_db()
        if saved.themes_status == "failed":
            break
    assert saved.themes_status == "failed"
    assert saved.themes_attempts == tagging.MAX_ATTEMPTS
    assert Response.objects.filter(pk=saved.pk).exists()


def test_it_shows_an_answers_themes_in_the_api(api: ApiClient) -> None:
    saved = _post(api, "pat@example.com", "Your Salesforce integration keeps dropping fields")
    body = api.get_json(f"/api/v1/responses/{saved.pk}").json()
    assert (body["themes_status"], body["themes"]) == ("pending", [])
    drain()
    listed = api.get_json("/api/v1/responses").json()["items"][0]
    assert listed["themes_status"] == "done"
    slugs = [t["slug"] for t in listed["themes"]]
    assert "integrations" in slugs
    assert all(t["source"] == "model" and t["model_version"] for t in listed["themes"])


def test_it_stores_the_sentiment_of_the_comment_and_each_sentence(api: ApiClient) -> None:
    comment = "The export is broken again. Otherwise the team is lovely."
    saved = _post(api, "pat@example.com", comment)
    assert api.get_json(f"/api/v1/responses/{saved.pk}").json()["sentiment"] is None
    drain()
    body = api.get_json(f"/api/v1/responses/{saved.pk}").json()["sentiment"]
    # A mixed comment's overall reading is the model's call; what is stored is that call.
    overall = sentiment.current_sentiment().analyse([comment])[0].overall
    assert (body["sentiment"], body["score"]) == (overall.label, overall.score)
    assert [(x["text"], x["sentiment"]) for x in body["sentences"]] == [
        ("The export is broken again.", "negative"),
        ("Otherwise the team is lovely.", "positive"),
    ]
    assert body["model_version"] == sentiment.current_sentiment().version


def test_it_reads_replies_and_call_notes_on_the_case_timeline(
    api: ApiClient, enterprise: Account
) -> None:
    from closeloop.loop.inbound import receive
    from closeloop.loop.models import Activity

    case = open_case(api, enterprise, 2, comment="Crashes on login")
    raw = (
        f"From: pat@example.com\r\nTo: {case.reply_address}\r\nSubject: Re\r\n\r\n"
        "We were invoiced twice last month and nobody answered our ticket."
    ).encode()
    receive(raw, "http")
    r = api.post_json(
        f"/api/v1/cases/{case.pk}/calls",
        {"outcome": "talked", "note": "Lovely call, they are happy with the new export speed."},
    )
    assert r.status_code == 200, r.content
    reply, call = (
        Activity.objects.get(case=case, kind=kind) for kind in ("reply_received", "call_logged")
    )
    assert (reply.themes_status, call.themes_status) == ("pending", "pending")
    drain()
    timeline = {a["kind"]: a for a in api.get_json(f"/api/v1/cases/{case.pk}").json()["activities"]}
    read = timeline["reply_received"]
    assert read["themes_status"] == "done"
    assert {"billing", "support"} <= {t["slug"] for t in read["themes"]}
    assert read["sentiment"]["sentiment"] == "negative"
    assert timeline["call_logged"]["sentiment"]["sentiment"] == "positive"
    assert timeline["created"]["themes_status"] == "" and timeline["created"]["sentiment"] is None
    # The case's own themes stay its answer's.
    assert "billing" not in {t["slug"] for t in case.response.themes_json()}


def test_it_reads_sentiment_again_once_the_tuned_model_arrives(
    api: ApiClient, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sentiment, "MODEL_PATH", tmp_path / sentiment.VERSION)
    monkeypatch.setattr(sentiment, "_current", None)
    saved = _post(api, "pat@example.com", "Support never answered. Very frustrating.")
    drain()
    saved.refresh_from_db()
    assert saved.sentiment_version == sentiment.INTERIM_VERSION  # read before it was tuned
    themes = sorted(t.theme.slug for t in saved.theme_tags.all())
    # A tuned model appears (here a tiny one, tuned for a step), as a worker's tuning ends.
    tiny = [sentiment.Snippet("tweets", f"awful {i}", -3.0) for i in range(40)]
    sentiment.save(st.train(tiny, epochs=1), tmp_path / sentiment.VERSION)
    monkeypatch.setattr(sentiment, "_checked_at", 0.0)  # as if RECHECK_SECONDS had passed
    assert tagging.handle_sentiment_reread() is True
    assert tagging.handle_sentiment_reread() is False  # nothing left to read again
    saved.refresh_from_db()
    assert saved.sentiment_version == sentiment.QUANTISED_VERSION
    assert saved.themes_status == "done"
    assert saved.sentiment in sentiment.LABELS and len(saved.sentiment_sentences) == 2
    assert sorted(t.theme.slug for t in saved.theme_tags.all()) == themes  # themes stay
