"""Churn and contraction flow in: through the API and the accounts CSV, each kept in the
account's history, and read by the program's churn figures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from closeloop.insights import program
from closeloop.loop import imports
from closeloop.loop.models import FollowUpCase
from closeloop.surveys.models import Account, AccountChange

from .conftest import ApiClient, open_case

pytestmark = pytest.mark.django_db


def post(api: ApiClient, **fields: Any) -> Any:
    return api.post_json("/api/v1/accounts", {"external_id": "acc-initech", **fields})


def field_of(reply: Any) -> str:
    return str(reply.json()["detail"][0]["loc"][-1])


def test_it_keeps_contraction_churn_and_reactivation_in_the_account_history(
    writer_api: ApiClient,
) -> None:
    assert post(writer_api, name="Initech", arr=120000).status_code == 201
    assert post(writer_api, arr=90000).json()["arr"] == 90000
    assert post(writer_api, arr=100000).status_code == 200
    left = (timezone.now() - timedelta(days=2)).replace(microsecond=0)
    churned = post(writer_api, churned_at=left.isoformat(), churn_reason="Moved to a rival")
    body = churned.json()
    assert body["churned_at"] is not None and body["churn_reason"] == "Moved to a rival"
    # Newest first by when it happened: the churn was two days ago.
    assert [(c["kind"], c["arr_before"], c["arr_after"]) for c in body["changes"]] == [
        ("expansion", 90000.0, 100000.0),
        ("contraction", 120000.0, 90000.0),
        ("churned", 100000.0, None),
    ]
    # The same churn again is no news.
    post(writer_api, churned_at=left.isoformat())
    assert AccountChange.objects.filter(kind="churned").count() == 1
    back = post(writer_api, churned=False).json()
    assert back["churned_at"] is None and back["changes"][0]["kind"] == "reactivated"
    assert back["churn_reason"] == ""
    account_id = back["id"]
    detail = writer_api.get_json(f"/api/v1/accounts/{account_id}").json()
    assert len(detail["changes"]) == 4 and all(c["source"] == "api" for c in detail["changes"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"churned_at": "2099-01-01T00:00:00Z"}, "churned_at"),
        ({"churned_at": "1999-01-01T00:00:00Z"}, "churned_at"),
        ({"churned_at": "last week"}, "churned_at"),
        ({"churned": False, "churned_at": "2026-01-01T00:00:00Z"}, "body"),
        ({"churned": True}, "body"),
        ({"churn_reason": "x" * 501}, "churn_reason"),
    ],
)
def test_it_refuses_a_bad_churn_by_name_and_writes_nothing(
    writer_api: ApiClient, fields: dict[str, Any], field: str
) -> None:
    assert post(writer_api, name="Initech").status_code == 201
    reply = post(writer_api, **fields)
    assert reply.status_code == 422, reply.content
    loc = reply.json()["detail"][0]["loc"]
    assert field in [str(part) for part in loc] or field == "body"
    account = Account.objects.get(external_id="acc-initech")
    assert account.churned_at is None and not AccountChange.objects.exists()


def test_it_imports_churn_from_the_accounts_csv() -> None:
    text = (
        "external_id,name,arr,churned_at,churn_reason\n"
        "a1,Acme,50000,2026-03-01T00:00:00Z,Budget cuts\n"
        "a2,Beta,100,,\n"
    )
    assert imports.import_text("accounts", text).ok
    acme = Account.objects.get(external_id="a1")
    assert acme.churned_at is not None and acme.churn_reason == "Budget cuts"
    (change,) = AccountChange.objects.all()
    assert (change.kind, change.source, change.arr_before_cents) == ("churned", "csv", 5_000_000)
    assert imports.import_text("accounts", text).ok  # again: nothing new
    assert AccountChange.objects.count() == 1
    bad = imports.import_text("accounts", "external_id,churned_at\na3,soon\n")
    assert [(p.row, p.column) for p in bad.problems] == [(2, "churned_at")]


def test_it_feeds_the_program_churn_figures(api: ApiClient, smb: Account) -> None:
    case = open_case(api, smb, 3)
    api.post_json(
        "/api/v1/accounts",
        {"external_id": smb.external_id, "churned_at": timezone.now().isoformat()},
    )
    figures = program.program_figures(FollowUpCase.objects.filter(pk=case.pk))[None]
    assert figures.unfollowed_churned == 1 and figures.unfollowed_accounts == 1
