"""One account health score (0–100) with its reasons: each sign of churn takes its
points off, each shown; in the API and on Insights → Account health."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from closeloop.insights import health
from closeloop.integrations.models import AccountSignal
from closeloop.surveys.models import Account
from closeloop.team.models import User

from .conftest import ApiClient, answer_at, open_case

pytestmark = pytest.mark.django_db


def test_it_takes_points_for_each_sign_of_churn_and_says_why(
    api: ApiClient, smb: Account, enterprise: Account, agent: User
) -> None:
    open_case(api, smb, 3, "pat@example.com", comment="Slow")
    api.post_json("/api/v1/responses", answer_at(enterprise, 10, "ceo@example.com"))
    now = timezone.now()
    AccountSignal.objects.create(account=smb, kind="payment_failed", at=now - timedelta(days=3))
    AccountSignal.objects.create(account=smb, kind="downgrade", at=now - timedelta(days=200))
    found = {h.account.pk: h for h in health.scores()}
    smb_health, ent_health = found[smb.pk], found[enterprise.pk]
    assert ent_health.score == 100 and ent_health.reasons == [] and ent_health.band == "healthy"
    assert smb_health.score == 100 - 25 - 10 - 15 == 50
    assert sorted(p for p, _ in smb_health.reasons) == [-25, -15, -10]
    assert any("payment failed on" in why for _, why in smb_health.reasons)
    assert not any("downgrade" in why for _, why in smb_health.reasons)  # 200 days ago
    assert smb_health.band == "watch"
    # The least healthy first.
    assert health.scores()[0].account == smb


def test_it_floors_the_score_at_zero_and_skips_churned_accounts(smb: Account) -> None:
    now = timezone.now()
    for kind in ("cancel_scheduled", "downgrade", "payment_failed", "dispute"):
        AccountSignal.objects.create(account=smb, kind=kind, at=now - timedelta(days=1))
    (h,) = health.scores()
    assert h.score == 100 - 30 - 15 - 15 - 15 - 5 == 20 and h.band == "at risk"
    smb.churned_at = now
    smb.save()
    assert health.scores() == [] and health.of(smb) is None


def test_it_serves_health_in_the_api_and_on_its_page(
    api: ApiClient, smb: Account, agent: User
) -> None:
    open_case(api, smb, 2, "pat@example.com")
    listed = api.get_json("/api/v1/insights/health").json()
    assert listed[0]["account_id"] == smb.pk and listed[0]["score"] == 65
    assert {"points": -10, "reason": "an open detractor case"} in listed[0]["reasons"]
    detail = api.get_json(f"/api/v1/accounts/{smb.pk}").json()
    assert detail["health"]["score"] == 65 and detail["health"]["band"] == "watch"
    bad: Any = api.get_json("/api/v1/insights/health", {"band": "meh"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "band"
    client = Client()
    client.force_login(agent)
    page = client.get("/insights/health/").content.decode()
    assert "Account health" in page and smb.name in page and "an open detractor case" in page
    assert "band: must be one of" in client.get("/insights/health/?band=x").content.decode()


def test_it_takes_points_for_falling_product_usage(smb: Account, enterprise: Account) -> None:
    from closeloop.integrations import segment

    now = timezone.now()
    smb.properties = {"seats": 40}
    smb.save()

    def track(user: str, n: int, days_ago: int, account: Account) -> dict[str, Any]:
        return {
            "type": "track",
            "userId": user,
            "event": "Opened",
            "messageId": f"{user}-{n}",
            "timestamp": (now - timedelta(days=days_ago, hours=1)).isoformat(),
            "context": {"groupId": account.external_id},
        }

    # smb: 4 people used it on 20 of the 30 days before; now 1 person, 2 days, the last
    # 20 days ago. enterprise: steady, so nothing is taken.
    busy = [track(f"s{u}", d, 31 + d, smb) for u in range(4) for d in range(20)]
    quiet = [track("s0", 100 + d, 20 + d, smb) for d in range(2)]
    steady = [track(f"e{u}", d, d, enterprise) for u in range(3) for d in range(40)]
    segment.ingest(busy + quiet + steady, now)
    found = {h.account.pk: h for h in health.scores(now=now)}
    reasons = dict((why.split(" (")[0], p) for p, why in found[smb.pk].reasons)
    assert reasons == {
        f"no one has used the product since {(now - timedelta(days=20, hours=1)):%-d %b %Y}": -20,
        "use down 98% in 30 days": -15,
        "active people down 75% in 30 days": -10,
        "1 of 40 paid seats active in 30 days": -10,
        "no survey answer in a year": -5,
    }
    assert found[enterprise.pk].score == 95  # only the missing survey answer
    assert health.of(smb, now) is not None and health.of(smb, now).score == found[smb.pk].score
