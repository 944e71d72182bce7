"""Set-up commands: demo data and the first admin login."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import F
from django.test import override_settings
from django.utils import timezone

from closeloop.insights import effects
from closeloop.insights.metrics import summarise
from closeloop.integrations.models import AccountSignal
from closeloop.loop.models import CheckBack, Conversation, FollowUpCase, Gesture, RoadmapItem
from closeloop.management import demo
from closeloop.surveys.models import Account, AccountChange, Person, Response
from closeloop.team.models import User
from closeloop.themes.models import Theme

pytestmark = pytest.mark.django_db


def test_it_seeds_a_labelled_year_with_a_drifting_segment() -> None:
    made = demo.seed(accounts=60, people=400, responses=3000)
    check_backs = Response.objects.filter(request__purpose="check_back")
    assert made == Response.objects.count() - check_backs.count() == 3000
    assert not Response.objects.filter(is_demo=False).exists()
    assert not Account.objects.filter(is_demo=False).exists()
    assert not Person.objects.filter(is_demo=False).exists()
    assert set(Account.objects.values_list("tier", flat=True)) == {
        "enterprise",
        "mid-market",
        "smb",
    }
    assert Account.objects.filter(owner__isnull=True).count() == 0
    now = timezone.now()
    oldest = Response.objects.order_by("created_at").first()
    assert oldest is not None and oldest.created_at < now - timedelta(days=330)
    mid = Response.objects.filter(account__tier="mid-market")
    early = summarise(mid.filter(created_at__lt=now - timedelta(days=270)))
    late = summarise(mid.filter(created_at__gte=now - timedelta(days=90)))
    assert late.nps < early.nps - 10
    detractor_comments = Response.objects.filter(score__lte=6).exclude(comment="")
    assert detractor_comments.count() > 100
    assert Response.objects.exclude(tags=[]).filter(score__lte=6).exists()
    # A few recent detractors answered their follow-up conversation, through the engine.
    talked = Conversation.objects.exclude(status=Conversation.Status.NOT_STARTED)
    assert talked.count() == len(demo.DEMO_CONVERSATIONS)
    assert talked.filter(status=Conversation.Status.STOPPED).exists()
    assert talked.filter(summary__churn_intent=True).exists()
    # The history's follow-through: types, gestures and answered check-backs, so the
    # program's breakdowns have groups to tell apart.
    history = FollowUpCase.objects.filter(rule="demo history")
    types = set(history.values_list("detractor_type", flat=True))
    assert types >= set(FollowUpCase.DetractorType.values)
    assert Gesture.objects.values("kind").distinct().count() >= 5
    answered = CheckBack.objects.filter(response__isnull=False)
    assert answered.filter(response__score__gte=7).exists()
    assert answered.filter(response__score__lte=6).exists()
    assert set(RoadmapItem.objects.values_list("status", flat=True)) == set(
        RoadmapItem.Status.values
    )
    assert RoadmapItem.objects.filter(theme__owner__isnull=True).count() == 0
    billing = Theme.objects.get(slug="billing")
    assert billing.team is not None and billing.approved_answers and billing.next_steps
    # Churn as billing recorded it, with the warnings that came before.
    left = Account.objects.filter(churned_at__isnull=False)
    assert left.exists() and all(a.churn_reason for a in left)
    assert AccountChange.objects.filter(kind="churned").count() == left.count()
    warned = AccountSignal.objects.filter(account__churned_at__isnull=False)
    assert warned.filter(at__lt=F("account__churned_at")).count() == warned.count() > 0
    by_type = {e.key: e for e in effects.effects(history, "detractor_type")}
    assert by_type["loyal"].recovered_rate != by_type["leaving"].recovered_rate


def test_it_seeds_once_with_the_once_flag(capsys: pytest.CaptureFixture[str]) -> None:
    demo.seed(accounts=5, people=10, responses=20)
    call_command("seed_demo", "--once")
    assert "already loaded" in capsys.readouterr().out
    assert Response.objects.count() == 20


def test_it_creates_and_prints_the_admin_login_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with override_settings(DATA_DIR=tmp_path):
        call_command("ensure_admin")
        first = capsys.readouterr().out
        call_command("ensure_admin")
        again = capsys.readouterr().out
        password = first.split("password '")[1].rstrip("'\n")
        # Printed at creation only; later starts say where it is kept.
        assert password not in again and "password in" in again and "admin-password" in again
        admin = User.objects.get(username="admin")
        assert admin.is_superuser and admin.check_password(password)
        admin.set_password("changed-by-hand-1")
        admin.save()
        call_command("ensure_admin")
        assert "password changed" in capsys.readouterr().out


def test_it_secures_cookies_and_hsts_when_the_site_is_served_over_https(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    probe = (
        "from django.conf import settings as s; import json; print(json.dumps(["
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "list(s.SECURE_PROXY_SSL_HEADER or []), s.SECRET_KEY_FALLBACKS]))"
    )

    def read(site: str) -> list[object]:
        env = {
            **os.environ,
            "SITE_URL": site,
            "DATA_DIR": str(tmp_path),
            "SECRET_KEY_FALLBACKS": "old-key-1, old-key-2",
        }
        out = (
            subprocess.run(  # noqa: S603 - our own manage.py
                [sys.executable, "manage.py", "shell", "-c", probe],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        return list(json.loads(out))

    assert read("https://nps.example.com") == [
        True,
        True,
        31536000,
        ["HTTP_X_FORWARDED_PROTO", "https"],
        ["old-key-1", "old-key-2"],
    ]
    assert read("http://127.0.0.1:8000")[:4] == [False, False, 0, []]


def test_it_keeps_emailed_links_working_after_the_secret_key_is_rotated(db: Any) -> None:
    from closeloop.surveys import links
    from closeloop.surveys.models import Person, Survey, SurveyRequest

    person = Person.objects.create(email="pat@example.com")
    request = SurveyRequest.objects.create(person=person, survey=Survey.default())
    with override_settings(SECRET_KEY="the-old-key-" * 4):
        unsubscribe = links.unsubscribe_url(request).rstrip("/").rsplit("/", 1)[1]
    with override_settings(SECRET_KEY="the-new-key-" * 4):
        with pytest.raises(links.LinkError):
            links.read_unsubscribe(unsubscribe)
    with override_settings(
        SECRET_KEY="the-new-key-" * 4, SECRET_KEY_FALLBACKS=["the-old-key-" * 4]
    ):
        assert links.read_unsubscribe(unsubscribe).pk == request.pk


def test_it_has_a_migration_for_every_model_change() -> None:
    # A model change without its migration works in the suite (which builds tables from
    # the models' migrations as they are) and breaks an upgrade: refuse it here.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
