"""Admins change the themes on the themes page, and history keeps its meaning: a merge
moves tags, a split retires the old theme and its answers are sorted into the new ones
(as corrections), a retired theme's tags stay readable."""

from __future__ import annotations

import pytest
from django.test import Client

from closeloop.surveys.models import Response
from closeloop.team.models import User
from closeloop.themes import learning
from closeloop.themes.models import Theme, ThemeExample, ThemeTag

from .conftest import ApiClient, answer

pytestmark = pytest.mark.django_db


def _client(user: User, password: str) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


def _tagged(api: ApiClient, email: str, comment: str, *slugs: str) -> Response:
    r = api.post_json("/api/v1/responses", answer(email=email, score=3, comment=comment))
    response = Response.objects.get(pk=r.json()["id"])
    learning.correct(response, [Theme.objects.get(slug=s) for s in slugs], via="test")
    return response


def _post(client: Client, **data: object) -> str:
    return client.post("/settings/themes/", data, follow=True).content.decode()


def test_it_adds_and_renames_themes_keeping_their_slug(admin_user: User) -> None:
    admin = _client(admin_user, "pw-admin-123")
    page = _post(
        admin,
        action="add",
        name="Security & compliance",
        description="SSO, audits",
        probes="Which requirement?\n\nWho asked for it?",
        owner=admin_user.pk,
    )
    assert "Theme Security &amp; compliance added" in page
    theme = Theme.objects.get(slug="security-compliance")
    assert theme.probes == ["Which requirement?", "Who asked for it?"]
    assert theme.owner == admin_user
    _post(admin, action="edit", theme=theme.pk, name="Security", description="", probes="")
    theme.refresh_from_db()
    assert (theme.slug, theme.name, theme.owner) == ("security-compliance", "Security", None)
    for data, error in [
        ({"name": ""}, "name: give the theme a name"),
        ({"name": "Bugs again", "slug": "bugs"}, "slug: a theme &#x27;bugs&#x27; already exists"),
        ({"name": "X", "slug": "Not A Slug"}, "slug: use lower-case letters"),
        ({"name": "Unclassified"}, "name: &#x27;unclassified&#x27; is reserved"),
        ({"name": "X", "probes": "\n".join(f"q{i}" for i in range(11))}, "probes: at most 10"),
    ]:
        assert error in _post(admin, action="add", **data)
    assert Theme.objects.count() == 11


def test_it_merges_a_theme_moving_its_tags(api: ApiClient, admin_user: User) -> None:
    only_docs = _tagged(api, "a@example.com", "Docs are thin", "documentation")
    both = _tagged(
        api, "b@example.com", "Docs are thin and onboarding slow", "documentation", "onboarding"
    )
    docs, onboarding = Theme.objects.get(slug="documentation"), Theme.objects.get(slug="onboarding")
    page = _post(
        _client(admin_user, "pw-admin-123"), action="merge", theme=docs.pk, into=onboarding.pk
    )
    assert "Documentation merged into Onboarding; 1 answers moved." in page
    docs.refresh_from_db()
    assert docs.merged_into == onboarding and docs.retired_at is not None
    assert not ThemeTag.objects.filter(theme=docs).exists()
    assert set(only_docs.theme_tags.values_list("theme__slug", flat=True)) == {"onboarding"}
    assert set(both.theme_tags.values_list("theme__slug", flat=True)) == {"onboarding"}
    # The merged theme's examples teach the theme it became; a correction naming it too.
    examples, _ = learning.training_set()
    assert not any("documentation" in e.themes for e in examples)
    assert learning.resolve_themes(["documentation"], "add", for_adding=False) == [onboarding]
    again = _post(
        _client(admin_user, "pw-admin-123"), action="merge", theme=docs.pk, into=onboarding.pk
    )
    assert "theme: Documentation is merged" in again


def test_it_splits_a_theme_and_sorts_its_answers_into_the_new_ones(
    api: ApiClient, admin_user: User
) -> None:
    crash = _tagged(api, "a@example.com", "The app crashes on login", "bugs")
    wrong = _tagged(api, "b@example.com", "Totals in the report are wrong", "bugs")
    other = _tagged(api, "c@example.com", "Something odd happened", "bugs")
    bugs = Theme.objects.get(slug="bugs")
    admin = _client(admin_user, "pw-admin-123")
    assert "names: name at least two" in _post(admin, action="split", theme=bugs.pk, names="Only")
    page = _post(admin, action="split", theme=bugs.pk, names="Crashes\nData errors")
    assert "Bugs split into Crashes, Data errors" in page
    crashes, data = Theme.objects.get(slug="crashes"), Theme.objects.get(slug="data-errors")
    assert crashes.split_from == bugs and crashes.probes == bugs.probes
    bugs.refresh_from_db()
    assert bugs.retired_at is not None and ThemeTag.objects.filter(theme=bugs).count() == 3
    assert "/settings/themes/bugs/sort/" in admin.get("/settings/themes/").content.decode()

    sort_page = admin.get("/settings/themes/bugs/sort/").content.decode()
    assert "The app crashes on login" in sort_page and "Totals in the report" in sort_page
    r = admin.post(
        "/settings/themes/bugs/sort/",
        {f"answer-{crash.pk}": crashes.pk, f"answer-{wrong.pk}": data.pk, f"answer-{other.pk}": ""},
        follow=True,
    )
    assert "2 answers sorted" in r.content.decode()
    assert set(crash.theme_tags.values_list("theme__slug", flat=True)) == {"crashes"}
    assert ThemeExample.objects.get(response=wrong).themes == ["data-errors"]
    assert ThemeTag.objects.filter(theme=bugs).count() == 1  # `other` waits
    # Shipped examples of the split theme no longer teach "no theme".
    examples, _ = learning.training_set()
    assert not any("bugs" in e.themes for e in examples)
    assert not any(e.text == "The app crashes on login" and not e.themes for e in examples)


def test_it_retires_and_restores_a_theme_keeping_its_tags(api: ApiClient, admin_user: User) -> None:
    tagged = _tagged(api, "a@example.com", "Price is steep", "pricing")
    pricing = Theme.objects.get(slug="pricing")
    admin = _client(admin_user, "pw-admin-123")
    assert "Pricing retired" in _post(admin, action="retire", theme=pricing.pk)
    body = api.get_json(f"/api/v1/responses/{tagged.pk}").json()
    assert [t["slug"] for t in body["themes"]] == ["pricing"]  # still readable
    r = api.post_json(f"/api/v1/responses/{tagged.pk}/themes", {"add": ["pricing"]})
    assert r.status_code == 422
    assert "Pricing restored" in _post(admin, action="restore", theme=pricing.pk)
    assert Theme.objects.get(slug="pricing").retired_at is None


def test_it_lets_only_admins_change_themes(manager: User, agent: User) -> None:
    for user, password in ((manager, "pw-maria-123"), (agent, "pw-alex-123")):
        client = _client(user, password)
        assert client.get("/settings/themes/").status_code == 403
        assert client.post("/settings/themes/", {"action": "retrain"}).status_code == 403


def test_it_queues_a_retraining_from_the_page(admin_user: User) -> None:
    page = _post(_client(admin_user, "pw-admin-123"), action="retrain")
    assert "Retraining queued" in page and "queued" in page


def test_it_never_lets_two_themes_read_the_same(api: ApiClient, admin_user: User) -> None:
    from django.db import IntegrityError, transaction

    existing = Theme.objects.get(slug="missing-feature")
    clash = api.post_json("/api/v1/themes", {"name": f"  {existing.name.upper()} "})
    assert clash.status_code == 422, clash.content
    assert clash.json()["detail"][0]["loc"][-1] == "name"
    added = api.post_json("/api/v1/themes", {"name": "Mobile app"})
    assert added.status_code == 201, added.content
    renamed = api.client_put("/api/v1/themes/mobile-app", {"name": "support"})
    assert renamed.status_code == 422 and renamed.json()["detail"][0]["loc"][-1] == "name"
    split = api.post_json("/api/v1/themes/mobile-app/split", {"names": ["iOS app", "ios APP"]})
    assert split.status_code == 422 and split.json()["detail"][0]["loc"][-1] == "1"
    assert Theme.objects.filter(name__iexact="ios app").count() == 0  # nothing half-written
    with pytest.raises(IntegrityError), transaction.atomic():  # and the database holds it too
        Theme.objects.create(slug="support-2", name="SUPPORT")
