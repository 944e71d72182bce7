"""API v1 for themes: classify texts without storing them; themes on cases."""

from __future__ import annotations

import time

import pytest

from closeloop.surveys.models import Account, Response
from closeloop.themes import classifier, sentiment
from closeloop.themes.models import Theme, ThemeTag

from .conftest import ApiClient, drain, open_case

pytestmark = pytest.mark.django_db


def test_it_classifies_texts_without_storing_anything(read_only_api: ApiClient) -> None:
    texts = [
        "We were invoiced twice and support never replied",
        "",
        "👍",
        "Love it",
        "Die Seite lädt extrem langsam, the dashboard is so slow",
        "far too expensive. " * 500,
    ]
    r = read_only_api.post_json("/api/v1/themes/classify", {"texts": texts})
    assert r.status_code == 200, r.content
    body = r.json()
    results = body["results"]
    assert len(results) == len(texts)
    assert {t["slug"] for t in results[0]["themes"]} >= {"billing", "support"}
    assert results[0]["sentiment"]["sentiment"] == "negative"
    assert all(0 < t["confidence"] <= 1 for r in results for t in r["themes"])
    for empty in results[1:4]:
        assert empty["themes"] == [] and empty["unclassified"] is True
    assert results[3]["sentiment"]["sentiment"] == "positive"
    assert results[4]["themes"][0]["slug"] == "performance"
    assert results[5]["themes"][0]["slug"] == "pricing"
    assert body["themes_version"].startswith(classifier.VERSION_PREFIX)
    assert body["sentiment_version"] == sentiment.current_sentiment().version
    assert not Response.objects.exists() and not ThemeTag.objects.exists()


def test_it_never_gives_a_retired_theme(read_only_api: ApiClient) -> None:
    Theme.objects.filter(slug="billing").update(retired_at="2026-01-01T00:00Z")
    r = read_only_api.post_json("/api/v1/themes/classify", {"texts": ["We were invoiced twice"]})
    assert "billing" not in {t["slug"] for t in r.json()["results"][0]["themes"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "texts"),
        ({"texts": []}, "texts"),
        ({"texts": ["ok"] * 1001}, "texts"),
        ({"texts": [3]}, "texts.0"),
        ({"texts": ["x" * 100_001]}, "texts.0"),
        ({"texts": ["ok"], "store": True}, "store"),
    ],
)
def test_it_names_the_field_of_a_bad_classify_request(
    read_only_api: ApiClient, body: dict[str, object], field: str
) -> None:
    r = read_only_api.post_json("/api/v1/themes/classify", body)
    assert r.status_code == 422, r.content
    locs = {".".join(str(p) for p in e["loc"][2:]) for e in r.json()["detail"]}
    assert field in locs


def test_it_shows_themes_and_sentiment_on_cases(api: ApiClient, enterprise: Account) -> None:
    case = open_case(api, enterprise, 2, "pat@example.com", comment="Your API keeps timing out")
    drain()
    body = api.get_json(f"/api/v1/cases/{case.pk}").json()["response"]
    assert "performance" in {t["slug"] for t in body["themes"]}
    assert body["sentiment"]["sentiment"] == "negative"
    listed = api.get_json("/api/v1/cases").json()["results"][0]["response"]
    assert listed["themes"] == body["themes"]


def test_it_filters_answers_and_cases_by_theme_and_sentiment(
    api: ApiClient, enterprise: Account
) -> None:
    billing = open_case(api, enterprise, 2, "a@example.com", comment="We were invoiced twice")
    slow = open_case(api, enterprise, 3, "b@example.com", comment="The dashboard is so slow")
    praise = open_case(api, enterprise, 5, "c@example.com", comment="Lovely people, great tool")
    drain()

    def ids(path: str, **params: str) -> set[int]:
        body = api.get_json(path, params).json()
        return {row["id"] for row in body.get("items", body.get("results", []))}

    assert ids("/api/v1/responses", theme="billing") == {billing.response_id}
    assert ids("/api/v1/responses", theme="unclassified") == {praise.response_id}
    assert ids("/api/v1/responses", sentiment="positive") == {praise.response_id}
    assert ids("/api/v1/cases", theme="performance") == {slow.pk}
    assert ids("/api/v1/cases", theme="unclassified") == {praise.pk}
    r = api.get_json("/api/v1/responses", {"sentiment": "angry"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "sentiment"]
    assert api.get_json("/api/v1/metrics", {"theme": "billing"}).json()["responses"] == 1


def test_it_changes_the_taxonomy_through_the_api(api: ApiClient, admin_user: object) -> None:
    r = api.post_json(
        "/api/v1/themes",
        {"name": "Security", "probes": ["Which requirement?"], "owner": "admin@example.com"},
    )
    assert r.status_code == 201, r.content
    assert (r.json()["slug"], r.json()["owner"]) == ("security", "admin@example.com")
    r = api.client_put("/api/v1/themes/security", {"name": "Security & SSO"})
    assert r.status_code == 200 and r.json()["name"] == "Security & SSO"
    r = api.post_json("/api/v1/themes/documentation/merge", {"into": "onboarding"})
    assert r.json()["merged_into"] == "onboarding" and r.json()["retired_at"]
    r = api.post_json("/api/v1/themes/bugs/split", {"names": ["Crashes", "Data errors"]})
    assert r.status_code == 201 and [t["slug"] for t in r.json()] == ["crashes", "data-errors"]
    assert api.post_json("/api/v1/themes/pricing/retire", {}).json()["retired_at"]
    assert api.post_json("/api/v1/themes/pricing/restore", {}).json()["retired_at"] is None
    listed = {t["slug"]: t for t in api.get_json("/api/v1/themes").json()}
    assert listed["bugs"]["retired_at"] and listed["crashes"]["answers"] == 0
    for path, body, loc in [
        ("/api/v1/themes", {"name": "Again", "slug": "security"}, ["body", "slug"]),
        ("/api/v1/themes", {"name": "X", "owner": "nobody@example.com"}, ["body", "owner"]),
        ("/api/v1/themes/onboarding/merge", {"into": "nope"}, ["body", "into"]),
        ("/api/v1/themes/onboarding/merge", {"into": "onboarding"}, ["body", "into"]),
        ("/api/v1/themes/bugs/split", {"names": ["A", "B"]}, ["body", "theme"]),
        ("/api/v1/themes/documentation/restore", {}, ["body", "theme"]),
    ]:
        r = api.post_json(path, body)
        assert r.status_code == 422, (path, r.content)
        assert loc in [e["loc"] for e in r.json()["detail"]], (path, r.json())
    assert api.post_json("/api/v1/themes/nope/retire", {}).status_code == 404


def test_it_answers_503_while_the_process_loads_its_models(
    read_only_api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from closeloop.themes import analysis

    monkeypatch.setattr(analysis, "warm_up", lambda: time.sleep(0.5))
    analysis.warm_up_in_background()
    loading = read_only_api.post_json("/api/v1/themes/classify", {"texts": ["slow exports"]})
    assert loading.status_code == 503 and loading["Retry-After"] == "5"
    deadline = time.monotonic() + 10
    while analysis.warming() and time.monotonic() < deadline:
        time.sleep(0.05)
    ready = read_only_api.post_json("/api/v1/themes/classify", {"texts": ["slow exports"]})
    assert ready.status_code == 200
