"""Learning from the team: corrections on answers and cases become examples, retraining
in the worker (on demand and nightly) stores a model every worker then uses, and the
taxonomy's history (merges, retirements) is respected by predictions and training."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from closeloop.core import periods
from closeloop.core.reading import STALE_RUN
from closeloop.surveys.models import Account, Response
from closeloop.themes import analysis, classifier, learning
from closeloop.themes.models import Theme, ThemeExample, ThemeTag, ThemeTraining

from .conftest import ApiClient, answer, drain, open_case

pytestmark = pytest.mark.django_db

SECURITY = [
    "We need SAML single sign-on before security will sign off",
    "No SSO means our security team blocks the rollout",
    "2FA is missing, our infosec review flagged it",
    "Security audit failed because there are no access logs for admins",
    "Please support Okta SSO, security requires it",
    "Our CISO wants SOC 2 reports and you have none",
    "password policy can't be enforced, security said no",
    "Need IP allowlisting for our security compliance",
    "sso sso sso. security keeps asking",
    "MFA for all users is a hard security requirement for us",
]


def _post(api: ApiClient, email: str, comment: str) -> Response:
    r = api.post_json("/api/v1/responses", answer(email=email, score=3, comment=comment))
    assert r.status_code == 201, r.content
    return Response.objects.get(pk=r.json()["id"])


def _slugs(response: Response) -> set[str]:
    return set(response.theme_tags.values_list("theme__slug", flat=True))


def test_it_turns_a_correction_into_a_training_example(api: ApiClient) -> None:
    saved = _post(api, "pat@example.com", "The invoice was wrong and support ignored us")
    drain()
    assert {"billing", "support"} <= _slugs(saved)
    r = api.post_json(
        f"/api/v1/responses/{saved.pk}/themes", {"add": ["pricing"], "remove": ["support"]}
    )
    assert r.status_code == 200, r.content
    themes = {t["slug"]: t for t in r.json()["themes"]}
    assert "support" not in themes and themes["pricing"]["source"] == "person"
    assert themes["pricing"]["confidence"] is None and themes["billing"]["source"] == "model"
    example = ThemeExample.objects.get(response=saved)
    assert example.text == saved.comment and example.source == "correction"
    assert set(example.themes) == set(themes) and example.via.startswith("API key")
    # A second correction of the same answer replaces its example, it does not add one.
    api.post_json(f"/api/v1/responses/{saved.pk}/themes", {"remove": ["pricing"]})
    assert ThemeExample.objects.get(response=saved).themes == ["billing"]


def test_it_corrects_a_cases_themes_on_its_answer(api: ApiClient, enterprise: Account) -> None:
    case = open_case(api, enterprise, 2, comment="Your API keeps timing out")
    r = api.post_json(f"/api/v1/cases/{case.pk}/themes", {"add": ["integrations"]})
    assert r.status_code == 200, r.content
    assert _slugs(case.response) == {"integrations"}
    listed = api.get_json(f"/api/v1/cases/{case.pk}").json()["response"]["themes"]
    assert [t["slug"] for t in listed] == ["integrations"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "add"]),
        ({"add": ["no-such-theme"]}, ["body", "add", "0"]),
        ({"add": ["bugs", "retired-one"]}, ["body", "add", "1"]),
        ({"remove": ["nope"]}, ["body", "remove", "0"]),
        ({"add": "bugs"}, ["body", "payload", "add"]),
        ({"add": ["bugs"], "extra": 1}, ["body", "payload", "extra"]),
    ],
)
def test_it_names_the_field_of_a_bad_correction(
    api: ApiClient, body: dict[str, object], loc: list[str]
) -> None:
    Theme.objects.create(slug="retired-one", name="Retired", retired_at=timezone.now())
    saved = _post(api, "pat@example.com", "Crashes daily")
    r = api.post_json(f"/api/v1/responses/{saved.pk}/themes", body)
    assert r.status_code == 422, r.content
    assert loc in [[str(p) for p in e["loc"]] for e in r.json()["detail"]]
    assert not ThemeExample.objects.exists() and not _slugs(saved) - {"bugs"}


def test_it_refuses_corrections_with_a_read_only_key(
    api: ApiClient, read_only_api: ApiClient
) -> None:
    saved = _post(api, "pat@example.com", "Crashes daily")
    r = read_only_api.post_json(f"/api/v1/responses/{saved.pk}/themes", {"add": ["bugs"]})
    assert r.status_code == 403
    assert read_only_api.post_json("/api/v1/themes/retrain", {}).status_code == 403


@pytest.fixture
def before_the_nightly_run() -> Iterator[None]:
    """The clock at 01:00 where the organisation is, ticking: the nightly retraining
    (after 02:00) would otherwise start in the first drain of a test run late at night."""
    night = datetime.combine(periods.today(), time(1, 0), tzinfo=periods.org_zone())
    with time_machine.travel(night, tick=True):
        yield


def test_it_learns_a_new_theme_from_corrections_after_retraining(
    api: ApiClient, before_the_nightly_run: None
) -> None:
    Theme.objects.create(slug="security", name="Security", description="SSO, 2FA, audits")
    shipped = learning.current_model().version
    for i, text in enumerate(SECURITY):
        saved = _post(api, f"sec{i}@example.com", text)
        learning.correct(saved, [Theme.objects.get(slug="security")], via="test")
    drain()  # tags the answers with the shipped model; nothing is retrained yet
    assert ThemeTraining.objects.filter(status="done").count() == 0
    probe = "Without SAML SSO our security team won't approve you"
    before = analysis.analyse([probe]).results[0].themes
    assert "security" not in {slug for slug, _ in before}

    r = api.post_json("/api/v1/themes/retrain", {})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    drain()
    run = ThemeTraining.objects.get(pk=r.json()["id"])
    assert run.status == "done" and run.model and run.corrections == len(SECURITY)
    assert run.version != shipped and learning.current_model().version == run.version

    after = analysis.analyse([probe])
    assert after.results[0].themes[0][0] == "security"
    # New answers are tagged by the new model, and say so.
    tagged = _post(api, "new@example.com", "We need SSO and 2FA for security")
    drain()
    tag = ThemeTag.objects.get(response=tagged, theme__slug="security")
    assert tag.model_version == run.version
    body = api.get_json("/api/v1/themes/trainings").json()
    assert body[0]["id"] == run.pk and body[0]["examples"] > 700

    # Retraining again with nothing new stores no second model.
    again = learning.request_training()
    drain()
    again.refresh_from_db()
    assert again.status == "unchanged" and again.model is None


def test_it_queues_a_nightly_retraining_only_when_something_changed(db: None) -> None:
    night = datetime(2026, 11, 24, 3, 0, tzinfo=periods.org_zone())
    with time_machine.travel(night, tick=False):
        drain()
    run = ThemeTraining.objects.get(kind="nightly")
    assert run.day == night.date() and run.status == "unchanged"
    with time_machine.travel(night, tick=False):
        drain()
    assert ThemeTraining.objects.filter(kind="nightly").count() == 1
    evening = datetime(2026, 11, 25, 1, 0, tzinfo=periods.org_zone())
    with time_machine.travel(evening, tick=False):
        drain()
    assert ThemeTraining.objects.filter(kind="nightly").count() == 1


def test_it_speaks_of_merged_and_retired_themes_as_they_are_now(
    read_only_api: ApiClient,
) -> None:
    text = "We were invoiced twice this month"
    found = analysis.analyse([text]).results[0].themes
    assert found[0][0] == "billing"
    pricing = Theme.objects.get(slug="pricing")
    Theme.objects.filter(slug="billing").update(merged_into=pricing, retired_at=timezone.now())
    assert analysis.analyse([text]).results[0].themes[0][0] == "pricing"
    examples, _ = learning.training_set()
    assert not any("billing" in e.themes for e in examples)
    assert any(e.themes == ("pricing",) for e in examples if "invoice" in e.text.lower())
    Theme.objects.filter(slug="performance").update(retired_at=timezone.now())
    slow = analysis.analyse(["The dashboard takes forever to load"]).results[0].themes
    assert "performance" not in {slug for slug, _ in slow}
    assert classifier.version_of(examples) != learning.current_model().version


def test_it_fails_a_retraining_cut_off_with_its_worker(db: None) -> None:
    cut_off = ThemeTraining.objects.create(
        kind="on_demand", status="running", started_at=timezone.now() - STALE_RUN * 2
    )
    recent = ThemeTraining.objects.create(
        kind="on_demand", status="running", started_at=timezone.now()
    )
    learning.handle_theme_training()
    cut_off.refresh_from_db()
    recent.refresh_from_db()
    assert (cut_off.status, cut_off.error) == ("failed", "interrupted")
    assert recent.status == "running"


def test_it_answers_503_while_the_theme_model_is_missing_and_a_worker_builds_it(
    api: ApiClient, read_only_api: ApiClient, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from closeloop.themes import model_files

    monkeypatch.setattr(model_files, "MODEL_DIR", tmp_path)
    monkeypatch.setattr(learning, "_cache", {})
    body = {"texts": ["We were invoiced twice"]}
    r = read_only_api.post_json("/api/v1/themes/classify", body)
    # A web process never trains: it says when to come back.
    assert r.status_code == 503 and int(r["Retry-After"]) > 0
    assert "being prepared" in r.json()["detail"]
    saved = _post(api, "pat@example.com", "We were invoiced twice")
    assert not analysis.ready()
    drain()  # the worker builds the model first, then reads the waiting comment
    assert learning.shipped_path().parent == tmp_path and learning.shipped_path().exists()
    saved.refresh_from_db()
    assert saved.themes_status == "done" and saved.themes_attempts == 0
    assert "billing" in {t.theme.slug for t in saved.theme_tags.all()}
    assert read_only_api.post_json("/api/v1/themes/classify", body).status_code == 200
