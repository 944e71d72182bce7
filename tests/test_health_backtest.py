"""The health backtest: every past month's accounts scored as they stood then, the AUC
of health against NPS alone for churn within 90 days, and the model fitted on it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Q
from django.test import Client
from django.utils import timezone
from sklearn.metrics import roc_auc_score

from closeloop.insights import backtest, health
from closeloop.insights.models import HealthBacktest
from closeloop.integrations.models import AccountSignal, Ticket
from closeloop.management import demo
from closeloop.surveys.models import Account, Response
from closeloop.team.models import User

from .conftest import ApiClient, answer_at, open_case

pytestmark = pytest.mark.django_db


def test_it_scores_an_account_as_it_stood_at_a_past_moment(
    api: ApiClient, smb: Account, enterprise: Account
) -> None:
    now = timezone.now()
    then = now - timedelta(days=40)
    # smb: a detractor case opened 50 days ago and closed 20 days ago; a ticket open
    # from 45 to 10 days ago; a payment failed 30 days ago (after `then`).
    case = open_case(api, smb, 2, "pat@example.com")
    Response.objects.filter(pk=case.response_id).update(created_at=now - timedelta(days=50))
    case.created_at, case.status = now - timedelta(days=50), "closed"
    case.closed_at = now - timedelta(days=20)
    case.save()
    for i, (opened, closed) in enumerate([(45, 10), (44, 11), (43, 12)]):
        Ticket.objects.create(
            source="api",
            ticket_id=f"t{i}",
            account=smb,
            status="closed",
            opened_at=now - timedelta(days=opened),
            closed_at=now - timedelta(days=closed),
            updated_at=now - timedelta(days=closed),
        )
    AccountSignal.objects.create(account=smb, kind="payment_failed", at=now - timedelta(days=30))
    # enterprise: answered 10 today, and churned 5 days ago.
    api.post_json("/api/v1/responses", answer_at(enterprise, 10, "ceo@example.com"))
    Account.objects.filter(pk=enterprise.pk).update(churned_at=now - timedelta(days=5))

    past = {h.account.pk: h for h in health.scores(now=then)}
    reasons = [why for _, why in past[smb.pk].reasons]
    assert "an open detractor case" in reasons
    assert any(why.startswith("3 support tickets open") for why in reasons)
    assert not any("payment failed" in why for why in reasons)
    # enterprise was a customer then, and had not answered yet.
    assert past[enterprise.pk].reasons == [(-5, "no survey answer in a year")]

    today = {h.account.pk: h for h in health.scores(now=now)}
    reasons = [why for _, why in today[smb.pk].reasons]
    assert "an open detractor case" not in reasons
    assert not any("tickets open" in why for why in reasons)
    assert any("payment failed" in why for why in reasons)
    assert enterprise.pk not in today


def test_it_measures_auc_with_ties_as_sklearn_does() -> None:
    rng = random.Random(3)
    risk = [rng.choice([0, 5, 10, 15, 25]) for _ in range(300)]
    churned = [rng.random() < 0.05 + r / 60 for r in risk]
    assert backtest.auc(risk, churned) == pytest.approx(roc_auc_score(churned, risk))
    assert backtest.auc([1, 2], [True, True]) is None


def test_it_backtests_health_against_nps_alone_month_by_month() -> None:
    demo.seed(accounts=60, people=400, responses=3000)
    now = timezone.now()
    result = backtest.run(now)
    assert len(result.months) >= 5
    for month in result.months:
        assert month.at.day == 1 and month.at + backtest.HORIZON <= now
        live = Account.objects.filter(health.live_at(month.at))
        assert month.accounts == live.count()
        left = live.filter(
            churned_at__gt=month.at, churned_at__lte=month.at + backtest.HORIZON
        ).count()
        assert month.churned == left
        if month.churned >= backtest.FEW_CHURNS:
            assert month.health is not None and 0 <= month.health <= 1
        else:
            assert month.health is None and month.nps is None
    assert result.churned_accounts > 0
    for figure in (result.health, result.nps):
        assert figure.auc is not None and figure.low is not None and figure.high is not None
        assert figure.low <= figure.auc <= figure.high
    assert result.gain.auc == pytest.approx(result.health.auc - result.nps.auc)
    # Too few churned accounts for a fitted model: it says so, and scores nothing.
    assert result.churned_accounts < backtest.MIN_CHURNED
    assert not result.fit.in_use and "needs 50 churned accounts" in result.fit.why


def _rows(accounts: int, churn_signal: str, seed: int = 5) -> list[backtest.Row]:
    """Rows where `churn_signal` multiplies churn and the other signals are noise."""
    rng = random.Random(seed)
    rows = []
    for account in range(accounts):
        for _ in range(3):
            fired = {k for k in health.WEIGHTS if rng.random() < 0.1}
            if rng.random() < 0.2:
                fired.add(churn_signal)
            churned = rng.random() < (0.5 if churn_signal in fired else 0.03)
            rows.append(backtest.Row(account, 100, None, frozenset(fired), churned))
    return rows


def test_it_fits_the_weights_once_fifty_accounts_churned_and_puts_them_in_use() -> None:
    found = backtest.fit(_rows(600, "seats_unused"))
    assert found.in_use, found.why
    assert found.fitted_auc is not None and found.written_auc is not None
    assert found.fitted_auc >= found.written_auc
    # seats_unused is written at -10, the fitted weight makes it the heaviest.
    assert found.weights["seats_unused"] == min(found.weights.values()) < -20
    assert all(points <= 0 for points in found.weights.values())
    few = backtest.fit(_rows(60, "seats_unused"))
    assert not few.in_use and few.weights == {} and "needs 50" in few.why


def test_it_scores_with_the_fitted_weights_when_the_last_run_put_them_in_use(
    api: ApiClient, smb: Account
) -> None:
    open_case(api, smb, 2, "pat@example.com")
    assert health.scores()[0].score == 100 - 25 - 10
    fitted = {key: 0 for key in health.WEIGHTS} | {"detractor_level": -40}
    now = timezone.now()
    HealthBacktest.objects.create(finished_at=now, weights=fitted, in_use=True)
    (h,) = health.scores()
    assert h.score == 60 and h.reasons[0][0] == -40 and len(h.reasons) == 1
    assert set(h.signals) == {"detractor_level", "open_case"}
    # A later run that did not put its fit in use brings back the written weights.
    HealthBacktest.objects.create(finished_at=now + timedelta(seconds=1), in_use=False)
    assert health.scores()[0].score == 65 and health.in_use()[1] is None


def test_it_runs_the_backtest_in_the_worker_once_a_month_and_when_asked(
    admin_user: User,
) -> None:
    assert backtest.handle_health_backtest()
    (first,) = HealthBacktest.objects.all()
    assert first.finished_at is not None and first.error == "" and first.result["months"] == []
    assert not backtest.handle_health_backtest()  # this month's has run
    client = Client()
    client.force_login(admin_user)
    assert client.post("/insights/health/backtest/").status_code == 302
    assert HealthBacktest.objects.filter(started_at__isnull=True, requested_by=admin_user).exists()
    assert backtest.handle_health_backtest() and not backtest.handle_health_backtest()
    assert not HealthBacktest.objects.filter(Q(finished_at__isnull=True)).exists()


def test_it_shows_the_backtest_by_month_on_its_page(admin_user: User, agent: User) -> None:
    month = datetime(2026, 5, 1, tzinfo=UTC)
    HealthBacktest.objects.create(
        finished_at=timezone.now(),
        result={
            "months": [
                {
                    "at": month.isoformat(),
                    "accounts": 180,
                    "churned": 9,
                    "health": 0.81,
                    "nps": 0.62,
                    "fitted": None,
                }
            ],
            "health": {"auc": 0.71, "low": 0.64, "high": 0.78},
            "nps": {"auc": 0.57, "low": 0.5, "high": 0.66},
            "gain": {"auc": 0.14, "low": 0.06, "high": 0.22},
            "rows": 1117,
            "churned_accounts": 31,
            "fit": {"why": "the fitted model needs 50 churned accounts in the backtest; it has 31"},
        },
    )
    client = Client()
    client.force_login(agent)
    page = client.get("/insights/health/backtest/").content.decode()
    for text in ("May 2026", "0.81", "0.62", "0.71", "+0.14", "0.06", "it has 31", "written"):
        assert text in page, text
    # Only an admin asks for a run.
    assert client.post("/insights/health/backtest/").status_code == 403
