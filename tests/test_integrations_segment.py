"""Product usage from Segment: its HTTP tracking API with the write key as Basic-auth user
(what Segment's own library sends), or the Webhooks destination's X-Signature; events
stored once per messageId, rolled up per user and day, matched to accounts by group,
email or mapping; bad requests refused whole."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_h
from hypothesis import strategies as st

from closeloop.integrations import segment, usage
from closeloop.integrations.models import UsageDay, UsageEvent, UsageIdentity
from closeloop.surveys.models import Account, Person

pytestmark = pytest.mark.django_db
KEY = "seg_write_key_test"
SECRET = "seg_shared_secret"
URL = "/api/v1/segment"


@pytest.fixture(autouse=True)
def keys(settings: Any) -> None:
    settings.SEGMENT_WRITE_KEY = KEY
    settings.SEGMENT_SHARED_SECRET = SECRET


@pytest.fixture
def initech(db: Any) -> Account:
    return Account.objects.create(name="Initech", external_id="acc-initech", arr_cents=120_000_00)


def basic(key: str = KEY) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def post(body: Any, path: str = URL, auth: str | None = None, **headers: Any) -> Any:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Client().post(
        path,
        payload,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth if auth is not None else basic(),
        **headers,
    )


def track(user: str, n: int, days_ago: float = 0, **extra: Any) -> dict[str, Any]:
    at = timezone.now() - timedelta(days=days_ago)
    return {
        "type": "track",
        "userId": user,
        "event": "Report Viewed",
        "messageId": f"m-{user}-{n}",
        "timestamp": at.isoformat(),
        **extra,
    }


def test_it_counts_usage_for_the_account_a_group_names(initech: Account) -> None:
    batch = [
        {"type": "group", "userId": "u1", "groupId": "acc-initech", "traits": {"seats": 20}},
        {"type": "group", "userId": "u2", "groupId": "acc-initech"},
        *[track("u1", n, days_ago=n) for n in range(10)],
        *[track("u2", 100 + n, days_ago=35 + n) for n in range(12)],
        *[track("u1", 200 + n, days_ago=31 + n) for n in range(12)],
    ]
    answer = post({"batch": batch})
    assert answer.status_code == 200, answer.content
    assert answer.json() == {
        "success": True,
        "received": 36,
        "new_events": 34,
        "unmatched_users": 0,
    }
    found = usage.of(initech)
    assert found is not None
    assert (found.users, found.active_people, found.active_people_before) == (2, 1, 2)
    assert found.active_days == 10
    assert found.active_days_before == 16  # the days 31–46 ago, by either of them
    assert found.seats == 20
    assert found.seat_use == pytest.approx(1 / 20)
    assert found.days_change == pytest.approx(10 / 16 - 1)
    initech.refresh_from_db()
    assert initech.properties["seats"] == 20


def test_it_stores_a_replayed_batch_once(initech: Account) -> None:
    batch = [track("u1", n, context={"groupId": "acc-initech"}) for n in range(5)]
    assert post({"batch": batch}).json()["new_events"] == 5
    again = post({"batch": batch})
    assert again.status_code == 200
    assert again.json()["new_events"] == 0
    assert UsageEvent.objects.count() == 5
    assert list(UsageDay.objects.values_list("events", flat=True)) == [5]


def test_it_matches_a_user_to_an_account_by_the_email_identify_gives(initech: Account) -> None:
    Person.objects.create(email="ana@initech.example", account=initech)
    post({"batch": [track("u9", 1)]})
    assert usage.of(initech) is None  # not known yet
    post({"type": "identify", "userId": "u9", "traits": {"email": "Ana@Initech.example"}})
    found = usage.of(initech)
    assert found is not None and found.active_people == 1
    user = UsageIdentity.objects.get(ref="u9")
    assert user.person is not None and user.person.email == "ana@initech.example"


def test_it_keeps_an_unknown_group_until_it_is_mapped(initech: Account) -> None:
    answer = post({"batch": [track("u1", 1, context={"groupId": "org_77"}), track("u2", 2)]})
    assert answer.json()["unmatched_users"] == 2
    post({"type": "group", "userId": "u2", "groupId": "org_77", "traits": {"seats": 5}})
    assert segment.map_identity("group", "org_77", initech) == 2
    found = usage.of(initech)
    assert found is not None and (found.active_people, found.seats) == (2, 5)
    # the group's next users find the account by themselves
    post({"batch": [track("u3", 3, context={"groupId": "org_77"})]})
    assert UsageIdentity.objects.get(ref="u3").account == initech
    with pytest.raises(segment.FieldError) as refused:
        segment.map_identity("group", "org_404", initech)
    assert refused.value.field == "ref"


def test_it_maps_a_group_on_the_integrations_page(admin_client: Client, initech: Account) -> None:
    post({"batch": [track("u1", 1, context={"groupId": "org_5"})]})
    page = admin_client.get("/settings/integrations/")
    assert b"org_5" in page.content
    answer = admin_client.post(
        "/settings/integrations/map-usage",
        {"kind": "group", "ref": "org_5", "account": "acc-initech"},
        follow=True,
    )
    assert b"org_5 is Initech" in answer.content
    assert UsageIdentity.objects.get(ref="u1").account == initech


def test_it_accepts_the_webhooks_destinations_signature(initech: Account) -> None:
    body = json.dumps(track("u1", 1, context={"groupId": "acc-initech"})).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    answer = post(body, auth="", HTTP_X_SIGNATURE=signature)
    assert answer.status_code == 200, answer.content
    wrong = post(body.replace(b"u1", b"u2"), auth="", HTTP_X_SIGNATURE=signature)
    assert wrong.status_code == 401
    assert wrong.json()["detail"][0]["loc"] == ["header", "X-Signature"]
    assert UsageEvent.objects.count() == 1


def test_it_refuses_a_wrong_or_missing_write_key_and_stores_nothing(initech: Account) -> None:
    for auth in ("", basic("nope"), "Basic !!!", "Bearer x"):
        answer = post({"batch": [track("u1", 1)]}, auth=auth)
        assert answer.status_code == 401, auth
        assert answer.json()["detail"][0]["loc"] == ["header", "Authorization"]
    assert not UsageIdentity.objects.exists()


def test_it_is_off_until_a_key_is_set(settings: Any) -> None:
    settings.SEGMENT_WRITE_KEY = settings.SEGMENT_SHARED_SECRET = ""
    assert post({"batch": []}).status_code == 503


def test_it_refuses_a_whole_batch_for_one_bad_message(initech: Account) -> None:
    cases = [
        ({"type": "track", "userId": "u1"}, ["body", "batch[1]", "event"]),
        ({"type": "track", "event": "x"}, ["body", "batch[1]", "userId"]),
        ({"type": "jump", "userId": "u1"}, ["body", "batch[1]", "type"]),
        ({"type": "group", "userId": "u1"}, ["body", "batch[1]", "groupId"]),
        ({**track("u1", 9), "timestamp": "yesterday"}, ["body", "batch[1]", "timestamp"]),
        (
            {**track("u1", 9), "timestamp": "2999-01-01T00:00:00Z"},
            ["body", "batch[1]", "timestamp"],
        ),
        ({**track("u1", 9), "messageId": 7}, ["body", "batch[1]", "messageId"]),
        ({"type": "identify", "userId": "u1", "traits": [1]}, ["body", "batch[1]", "traits"]),
        ("track", ["body", "batch[1]"]),
    ]
    for bad, where in cases:
        answer = post({"batch": [track("u1", 1), bad]})
        assert answer.status_code == 400, bad
        assert answer.json()["detail"][0]["loc"] == where, bad
    assert not UsageEvent.objects.exists() and not UsageIdentity.objects.exists()


def test_it_answers_as_segment_does_for_sizes_and_shapes() -> None:
    big = [track("u1", n, properties={"pad": "x" * 1000}) for n in range(600)]
    over = post({"batch": big})
    assert over.status_code == 400
    assert "500 KB" in over.json()["detail"][0]["msg"]
    huge = post({"batch": [track("u1", 1, properties={"pad": "x" * 40_000})]})
    assert huge.status_code == 400
    assert huge.json()["detail"][0]["loc"] == ["body", "batch[0]"]
    assert post(b"{not json").status_code == 400
    assert post([1, 2]).status_code == 400
    assert post({"batch": "no"}).json()["detail"][0]["loc"] == ["body", "batch"]
    assert post({"batch": []}, path=URL + "/v1/nope").status_code == 404
    assert not UsageEvent.objects.exists()


def test_it_reads_a_gzipped_batch_and_the_per_call_paths(initech: Account) -> None:
    body = gzip.compress(json.dumps({"batch": [track("u1", 1)]}).encode())
    answer = post(body, path=URL + "/v1/batch", HTTP_CONTENT_ENCODING="gzip")
    assert answer.status_code == 200, answer.content
    one = {"userId": "u1", "event": "Exported", "messageId": "single"}
    assert post(one, path=URL + "/v1/track").json()["new_events"] == 1
    assert post(b"\x1f\x8b broken", HTTP_CONTENT_ENCODING="gzip").status_code == 400
    assert UsageEvent.objects.count() == 2


def test_it_corrects_the_senders_clock_by_sent_at(initech: Account) -> None:
    now = timezone.now()
    skewed = {
        **track("u1", 1),
        "timestamp": (now + timedelta(hours=3, minutes=-10)).isoformat(),
        "sentAt": (now + timedelta(hours=3)).isoformat(),
    }
    assert post({"batch": [skewed]}).status_code == 200
    at = UsageEvent.objects.get().at
    assert abs((at - (now - timedelta(minutes=10))).total_seconds()) < 60


@settings_h(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "type",
                        "userId",
                        "event",
                        "batch",
                        "groupId",
                        "timestamp",
                        "traits",
                        "messageId",
                    ]
                )
                | st.text(max_size=8),
                inner,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_it_never_fails_on_any_json(body: Any) -> None:
    answer = post(body)
    assert answer.status_code in (200, 400), answer.content


@pytest.mark.django_db(transaction=True)
def test_it_takes_usage_from_segments_own_library(live_server: Any, keys: None) -> None:
    from segment.analytics import Client as SegmentClient

    account = Account.objects.create(name="Globex", external_id="acc-globex")
    Person.objects.create(email="hank@globex.example", account=account)
    errors: list[Any] = []
    client = SegmentClient(
        write_key=KEY,
        host=f"{live_server.url}/api/v1/segment",
        on_error=lambda error, items: errors.append(error),
        gzip=True,
        max_retries=0,
    )
    client.identify("hank", {"email": "hank@globex.example", "name": "Hank"})
    client.group("hank", "acc-globex", {"seats": 12})
    for n in range(30):
        client.track(
            "hank", "Dashboard Opened", {"n": n}, timestamp=timezone.now() - timedelta(days=n)
        )
    client.page("marge", name="Settings", context={"groupId": "acc-globex"})
    client.flush()
    client.join()
    assert errors == []
    found = usage.of(account)
    assert found is not None
    assert (found.users, found.active_days, found.active_people, found.seats) == (2, 30, 2, 12)
    assert UsageEvent.objects.filter(event="page: Settings").count() == 1
    wrong = SegmentClient(
        write_key="wrong",
        host=f"{live_server.url}/api/v1/segment",
        max_retries=0,
        on_error=lambda error, items: errors.append(error),
    )
    wrong.track("hank", "Nope")
    wrong.flush()
    wrong.join()
    assert len(errors) == 1 and "401" in str(errors[0]), errors
    assert UsageEvent.objects.count() == 31


def test_it_shows_usage_on_the_account_in_the_api(api: Any, initech: Account) -> None:
    post(
        {
            "batch": [
                track("u1", n, days_ago=n, context={"groupId": "acc-initech"}) for n in range(3)
            ]
        }
    )
    found = api.get_json(f"/api/v1/accounts/{initech.pk}").json()
    assert found["usage"]["active_days_30"] == 3
    assert found["usage"]["users"] == 1 and found["usage"]["seats_paid"] is None


def test_it_refuses_a_nul_character_that_postgresql_cannot_store(initech: Account) -> None:
    bad = {"type": "identify", "userId": "u1", "traits": {"name": "a\u0000b"}}
    assert post({"batch": [bad]}).status_code == 400
    assert not UsageIdentity.objects.exists()
