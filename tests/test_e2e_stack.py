"""The running system, end to end: what `make run` starts (gunicorn and `runworker`, as
`scripts/run.sh` starts them) on PostgreSQL, with a real SMTP server and a real HTTP
receiver on loopback, driven only over HTTP and SMTP.

`make e2e` runs this file (and `.ci/run` runs `make e2e`); `make test` leaves it out.
The in-process test client cannot see what this sees: process start-up, model loading
in each web process, gunicorn's timeout, the worker's own loop and per-process state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller

from .hubspot_server import HubSpotServer
from .loopback import Inbox, Receiver, _handler, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "E2E_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/closeloop_e2e"
)
SECRET = "e2e-inbound-secret"
STRIPE_SECRET = "whsec_e2e"
SEGMENT_KEY = "seg_e2e_write_key"
ZENDESK_SECRET = "zd_e2e_secret"
OWNER = ("olivia", "olivia@example.com", "Olivia Owner")
CUSTOMER = "dana@customer.example"


@dataclass
class Stack:
    base: str
    key: str
    admin_password: str
    inbox: Inbox
    slack: Receiver
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    crm: HubSpotServer

    def api(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}"}
        return requests.request(
            method, f"{self.base}{path}", json=body, headers=headers, timeout=60, **kwargs
        )


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _recreate_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("e2e-data")
    inbox = Inbox()
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    ref: list[Receiver] = []
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    http.daemon_threads = True
    ref.append(Receiver(http))
    threading.Thread(target=http.serve_forever, daemon=True).start()
    crm = HubSpotServer()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "DATA_DIR": str(data),
        "SITE_URL": base,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "DEFAULT_FROM_EMAIL": "Sam Support <sam@vendor.example>",
        "INBOUND_EMAIL_SECRET": SECRET,
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "SEGMENT_WRITE_KEY": SEGMENT_KEY,
        "ZENDESK_WEBHOOK_SECRET": ZENDESK_SECRET,
        "HUBSPOT_ACCESS_TOKEN": crm.state.token,
        "HUBSPOT_API_URL": crm.url,
        "SENTIMENT_TUNING": "off",
        "OUTBOUND_ALLOW_HOSTS": "127.0.0.1",
        "WORKER_IDLE_SECONDS": "0.3",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PY": sys.executable,
        "LOG_LEVEL": "WARNING",
    }
    _recreate_database(DATABASE_URL)
    _manage(env, "migrate", "--noinput")
    password = re.search(r"password '([^']+)'", _manage(env, "ensure_admin"))
    assert password, "ensure_admin printed no password"
    key = _manage(env, "create_api_key", "e2e", "--admin").strip().splitlines()[-1]
    username, email, name = OWNER
    _manage(
        env,
        "shell",
        "-c",
        "from closeloop.team.models import User, Role; "
        f"User.objects.create_user({username!r}, {email!r}, 'pw-olivia-123', "
        f"first_name={name.split()[0]!r}, last_name={name.split()[1]!r}, role=Role.AGENT)",
    )
    log = data / "run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", "scripts/run.sh"],  # noqa: S607 - the script `make run` runs
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(base, key, password.group(1), inbox, ref[0], process, log, env, crm)
    try:

        def healthy() -> bool:
            try:
                return requests.get(f"{base}/health", timeout=2).status_code == 200
            except requests.RequestException:  # not listening yet, or still starting
                return False

        _until(healthy, 60, "gunicorn to answer /health")
        yield stack
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        smtp.stop()
        crm.close()
        http.shutdown()
        http.server_close()
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text[-5000:]


def _detractor(stack: Stack) -> dict[str, Any]:
    """The detractor's case once the answer went in (posted once per module)."""
    found = stack.api("get", "/api/v1/cases", params={"email": CUSTOMER}).json()
    assert found["count"] == 1, found
    return dict(found["results"][0])


def test_it_alerts_the_owner_on_slack_and_writes_to_the_customer(stack: Stack) -> None:
    channel = stack.api("post", "/api/v1/channels", {"kind": "slack", "url": stack.slack.url})
    assert channel.status_code in (200, 201), channel.text
    account = {
        "name": "Globex",
        "external_id": "acc-globex",
        "tier": "smb",
        "arr": 6000,
        "owner_email": OWNER[1],
    }
    assert stack.api("post", "/api/v1/accounts", account).status_code in (200, 201)
    began = time.monotonic()
    answer = {
        "person": {"email": CUSTOMER, "name": "Dana", "account": {"external_id": "acc-globex"}},
        "score": 4,  # moderate, standard account: an automated first email (the policy)
        "comment": "Exports keep timing out and support never answered my ticket",
    }
    posted = stack.api("post", "/api/v1/responses", answer)
    assert posted.status_code == 201, posted.text
    alerts = _until(lambda: stack.slack.requests, 60, "the Slack alert")
    alerted_in = time.monotonic() - began
    slack_text = alerts[0].body.decode()
    assert "Globex" in slack_text and "Exports keep timing out" in slack_text
    outreach = _until(lambda: stack.inbox.to(CUSTOMER), 60, "the outreach email")[0]
    assert OWNER[1] in str(outreach["From"]) and outreach["Reply-To"]
    assert alerted_in < 30, f"the owner heard after {alerted_in:.1f} s"
    case = _detractor(stack)
    assert case["score"] == 4 and case["status"] == "contacted"


def test_it_triages_a_batchs_detractors_in_the_worker_and_writes_to_them(stack: Stack) -> None:
    account = {"name": "Initech", "external_id": "acc-initech", "tier": "smb", "arr": 4000}
    account["owner_email"] = OWNER[1]
    assert stack.api("post", "/api/v1/accounts", account).status_code in (200, 201)
    people = [f"batch{i}@initech.example" for i in range(3)]
    answers = [
        {
            "person": {
                "email": email,
                "name": f"Pat {i}",
                "account": {"external_id": "acc-initech"},
            },
            "score": [3, 4, 9][i],  # two moderate detractors (an automated email), a promoter
            "comment": "The weekly export fails every Monday",
        }
        for i, email in enumerate(people)
    ]
    sent = stack.api("post", "/api/v1/responses/batch", {"responses": answers})
    assert sent.status_code == 200 and sent.json()["accepted"] == 3, sent.text
    began = time.monotonic()
    for email in people[:2]:
        mail = _until(lambda e=email: stack.inbox.to(e), 60, f"the outreach email to {email}")
        assert OWNER[1] in str(mail[0]["From"])
    written_in = time.monotonic() - began
    for email in people[:2]:
        found = stack.api("get", "/api/v1/cases", params={"email": email}).json()
        assert found["count"] == 1 and found["results"][0]["loop"] == "detractor", found
        assert found["results"][0]["owner"]["email"] == OWNER[1], found
    promoter = stack.api("get", "/api/v1/cases", params={"email": people[2]}).json()
    assert all(c["loop"] == "promoter" for c in promoter["results"]), promoter
    assert written_in < 30, f"the detractors heard after {written_in:.1f} s"


def test_it_puts_the_customers_emailed_reply_on_the_case(stack: Stack) -> None:
    outreach = _until(lambda: stack.inbox.to(CUSTOMER), 60, "the outreach email")[0]
    reply = EmailMessage()
    reply["From"] = f"Dana <{CUSTOMER}>"
    reply["To"] = str(outreach["Reply-To"])
    reply["Subject"] = f"Re: {outreach['Subject']}"
    reply["Message-ID"] = make_msgid(domain="customer.example")
    reply["In-Reply-To"] = str(outreach["Message-ID"])
    reply.set_content("The CSV export of our 40k contacts times out after a minute.\n")
    body = bytes(reply)
    stamp = str(int(time.time()))
    signature = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    posted = requests.post(
        f"{stack.base}/inbound/email",
        data=body,
        headers={
            "Content-Type": "message/rfc822",
            "X-Closeloop-Timestamp": stamp,
            "X-Closeloop-Signature": f"sha256={signature.hexdigest()}",
        },
        timeout=30,
    )
    assert posted.status_code in (200, 202), posted.text
    case_id = _detractor(stack)["id"]

    def replied() -> Any:
        case = stack.api("get", f"/api/v1/cases/{case_id}").json()
        return case if "40k contacts" in json.dumps(case["activities"]) else None

    case = _until(replied, 60, "the reply on the case timeline")
    assert case["status"] == "in_conversation"

    # The reply entered the follow-up conversation: its next question comes back by
    # email, from the owner, threaded under the customer's reply.
    def threaded() -> list[EmailMessage]:
        return [m for m in stack.inbox.to(CUSTOMER) if m["In-Reply-To"] == reply["Message-ID"]]

    question = _until(threaded, 60, "the conversation's next question by email")[0]
    assert OWNER[1] in str(question["From"]) and str(question["Subject"]).startswith("Re: ")
    assert str(outreach["Message-ID"]) in str(question["References"])
    talk = stack.api("get", f"/api/v1/cases/{case_id}").json()["conversation"]
    assert [m["from"] for m in talk["messages"]] == ["closeloop", "customer", "closeloop"]
    assert talk["messages"][-1]["text"] in question.get_body().get_content()


def test_it_holds_the_follow_up_conversation_on_its_page(stack: Stack) -> None:
    answer = {
        "person": {
            "email": "lee@initech.example",
            "name": "Lee",
            "account": {"external_id": "acc-globex"},
        },
        "score": 5,
        "comment": "The dashboard takes a minute to load every morning.",
    }
    assert stack.api("post", "/api/v1/responses", answer).status_code == 201
    email = _until(lambda: stack.inbox.to("lee@initech.example"), 60, "the outreach email")[0]
    link = re.search(r"(http://\S+/c/\S+/)", email.get_body().get_content())
    assert link, "the first email offers the conversation"
    url = link.group(1)
    page = requests.get(url, timeout=30)
    assert page.status_code == 200 and "5 out of 10" in page.text
    said = requests.post(
        f"{url}messages",
        json={"text": "Honestly we are not renewing; we are moving to Grafana next month."},
        timeout=30,
    )
    assert said.status_code == 200 and said.json()["done"] is False, said.text
    # What cannot wait reaches the owner at once: by email and on Slack.
    urgent = _until(
        lambda: [m for m in stack.inbox.to(OWNER[1]) if str(m["Subject"]).startswith("Urgent")],
        60,
        "the owner's urgent alert",
    )[0]
    assert "not renewing" in urgent.get_body().get_content()
    _until(
        lambda: [r for r in stack.slack.requests if b"Urgent" in r.body], 60, "Slack's urgent alert"
    )
    ended = requests.post(f"{url}messages", json={"text": "No more questions please."}, timeout=30)
    assert ended.json()["done"] is True
    found = stack.api("get", "/api/v1/cases", params={"email": "lee@initech.example"}).json()
    case = stack.api("get", f"/api/v1/cases/{found['results'][0]['id']}").json()
    assert case["urgency"] == "high" and case["detractor_type"] == "leaving"
    summary = case["conversation"]["summary"]
    assert summary["churn_intent"] and summary["competitor"] == "Grafana"
    assert case["conversation"]["status"] == "stopped"
    slack = _until(
        lambda: [r for r in stack.slack.requests if b"Conversation ended" in r.body],
        60,
        "conversation.completed on Slack",
    )[0]
    assert b"Churn intent" in slack.body and b"not renewing" in slack.body
    assert requests.get(url.replace("/c/", "/c/x"), timeout=30).status_code == 404


def test_it_classifies_a_thousand_texts_within_the_timeout(stack: Stack) -> None:
    from closeloop.themes.classifier import load_examples

    # 1,000 different texts (the same text twice is read once): the shipped examples.
    examples = [e.text for e in load_examples()]
    texts = ["We were invoiced twice and support never replied", "Love it"]
    texts += [f"{examples[i % len(examples)]} ({i})" for i in range(998)]
    for _ in range(10):  # a process still loading its models says when to come back
        began = time.monotonic()
        reply = stack.api("post", "/api/v1/themes/classify", {"texts": texts})
        if reply.status_code != 503:
            break
        assert time.monotonic() - began < 2
        time.sleep(int(reply.headers["Retry-After"]))
    assert reply.status_code == 200, reply.text
    assert time.monotonic() - began < 30
    results = reply.json()["results"]
    assert len(results) == 1000
    assert {t["slug"] for t in results[0]["themes"]} >= {"billing", "support"}
    assert results[0]["sentiment"]["sentiment"] == "negative"
    assert results[1]["sentiment"]["sentiment"] == "positive"
    too_many = stack.api("post", "/api/v1/themes/classify", {"texts": ["x"] * 1001})
    assert too_many.status_code == 422 and "texts" in json.dumps(too_many.json())


def test_it_serves_the_official_delighted_client(stack: Stack) -> None:
    import delighted

    client = delighted.Client(api_key=stack.key, api_base_url=f"{stack.base}/v1/")
    person = delighted.Person.create(client=client, email="hist@example.com", send=False)
    then = int(datetime(2025, 6, 1, 12, 0, tzinfo=UTC).timestamp())
    old = delighted.SurveyResponse.create(
        client=client, person=person.id, score=10, comment="great", created_at=then
    )
    assert old.created_at == then  # back-dated history keeps its date
    metrics = delighted.Metrics.retrieve(client=client, since=then - 60, until=then + 60)
    assert metrics.promoter_count == 1 and metrics.response_count == 1


def _submit(
    session: requests.Session,
    base: str,
    page: str,
    data: dict[str, str] | None = None,
    action: str | None = None,
    allow_redirects: bool = False,
) -> requests.Response:
    """Post a form of `page` (to `action`, else to the page) as a browser would: with
    the page's CSRF token, and the page as Referer."""
    text = session.get(f"{base}{page}", timeout=30).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
    assert token, text[:500]
    return session.post(
        f"{base}{action or page}",
        data={**(data or {}), "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": f"{base}{page}"},
        allow_redirects=allow_redirects,
        timeout=30,
    )


def _log_in(
    base: str, username: str, password: str, session: requests.Session | None = None
) -> requests.Response:
    credentials = {"username": username, "password": password}
    return _submit(session or requests.Session(), base, "/login/", credentials)


def test_it_holds_the_access_rules_on_the_running_stack(stack: Stack) -> None:
    # Outbound calls: an address inside the network is refused when the channel is saved.
    inside = stack.api("post", "/api/v1/channels", {"kind": "webhook", "url": "http://10.0.0.1/x"})
    assert inside.status_code == 422 and "url" in inside.text, inside.text
    # Key scopes: a read-write key cannot touch the taxonomy or see channel secrets.
    writer = _manage(stack.env, "create_api_key", "e2e writer").strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {writer}"}
    renamed = requests.put(
        f"{stack.base}/api/v1/themes/billing", json={"name": "Renamed"}, headers=headers, timeout=30
    )
    assert renamed.status_code == 403 and "admin API key" in renamed.text
    channels = requests.get(f"{stack.base}/api/v1/channels", headers=headers, timeout=30).json()
    assert channels and all(c["secret"] == "" for c in channels)
    # Logins: the fifth failure locks this user out from this address, right password or not.
    for _ in range(4):
        assert _log_in(stack.base, "olivia", "wrong-password").status_code == 200
    assert _log_in(stack.base, "olivia", "wrong-password").status_code == 429
    assert _log_in(stack.base, "olivia", "pw-olivia-123").status_code == 429
    assert _log_in(stack.base, "admin", stack.admin_password).status_code == 302


def test_it_follows_through_from_type_to_shipped_fix_and_measures_it(stack: Stack) -> None:
    """Follow-through on the running stack: typing a top account's customer as leaving
    emails its sponsor; the theme's protocol sheet reaches the case; shipping a roadmap
    item opens the announcement for the case; the gesture shows in the breakdown; the
    monthly report's PDF has its sections."""
    from io import BytesIO

    from pypdf import PdfReader

    _manage(
        stack.env,
        "shell",
        "-c",
        "from closeloop.team.models import User, Role; "
        "User.objects.create_user('vp', 'vp@vendor.example', 'pw-vp-123', role=Role.MANAGER)",
    )
    account = {
        "name": "Initech",
        "external_id": "acc-initech",
        "tier": "enterprise",
        "arr": 250000,
        "owner_email": OWNER[1],
        "executive_sponsor_email": "vp@vendor.example",
    }
    assert stack.api("post", "/api/v1/accounts", account).status_code in (200, 201)
    kim = "kim.lo@initech.example"
    answer = {
        "person": {"email": kim, "name": "Kim Lo", "account": {"external_id": "acc-initech"}},
        "score": 5,
        "comment": "Reports take minutes to load every morning",
    }
    assert stack.api("post", "/api/v1/responses", answer).status_code == 201
    case = _until(
        lambda: stack.api("get", "/api/v1/cases", params={"email": kim}).json()["results"],
        60,
        "Kim's case",
    )[0]
    typed = stack.api("post", f"/api/v1/cases/{case['id']}/type", {"detractor_type": "leaving"})
    assert typed.status_code == 200 and typed.json()["detractor_type"] == "leaving", typed.text
    bad = stack.api("post", f"/api/v1/cases/{case['id']}/type", {"detractor_type": "meh"})
    assert bad.status_code == 422 and "detractor_type" in bad.text

    def leaving_mail() -> list[EmailMessage]:
        return [m for m in stack.inbox.to("vp@vendor.example") if "Leaving:" in str(m["Subject"])]

    subjects = [str(m["Subject"]) for m in stack.inbox.to("vp@vendor.example")]
    found = _until(leaving_mail, 60, f"the sponsor's leaving alert (has {subjects})")
    assert "Initech" in found[0].get_content()

    sheet = {
        "team": None,
        "approved_answers": [{"title": "Faster reports", "body": "Hi {first_name}, fixed."}],
        "next_steps": ["Ask which report and when"],
        "loop_in": "Platform on-call",
    }
    assert stack.api("put", "/api/v1/themes/performance/protocol", sheet).status_code == 200
    tagged = stack.api("post", f"/api/v1/cases/{case['id']}/themes", {"add": ["performance"]})
    assert tagged.status_code == 200, tagged.text
    detail = stack.api("get", f"/api/v1/cases/{case['id']}").json()
    (protocol,) = [p for p in detail["protocols"] if p["theme"] == "performance"]
    assert protocol["approved_answers"][0]["body"] == "Hi Kim, fixed."

    item = stack.api(
        "post", "/api/v1/themes/performance/roadmap", {"title": "Reports load in 2 seconds"}
    ).json()
    shipped = stack.api("patch", f"/api/v1/roadmap/{item['id']}", {"status": "shipped"}).json()
    announcement = stack.api("get", f"/api/v1/announcements/{shipped['announcement_id']}").json()
    assert announcement["title"] == "Reports load in 2 seconds"
    assert case["id"] in announcement["case_ids"] and announcement["status"] == "draft"

    gave = stack.api(
        "post", f"/api/v1/cases/{case['id']}/gestures", {"kind": "credit", "value": 500}
    )
    assert gave.status_code == 200, gave.text
    effects = stack.api("get", "/api/v1/insights/effects", params={"by": "gesture"}).json()
    assert {"credit": 1} == {
        g["key"]: g["cases"] for g in effects["groups"] if g["key"] == "credit"
    }
    assert "follow_up_return" in effects

    session = requests.Session()
    assert _log_in(stack.base, "admin", stack.admin_password, session).status_code == 302
    month = datetime.now(UTC).strftime("%Y-%m")
    pdf = session.get(f"{stack.base}/insights/report/?month={month}&format=pdf", timeout=60)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf.content)).pages)
    assert "NPS by month" in text and "Follow-up program" in text


def test_it_takes_stripe_webhooks_and_marks_the_account_churned(stack: Stack) -> None:
    account = {"name": "Hooli", "external_id": "cus_hooli", "tier": "smb", "arr": 12000}
    assert stack.api("post", "/api/v1/accounts", account).status_code in (200, 201)
    champion = {
        "email": "gavin@hooli.example",
        "name": "Gavin",
        "properties": {"champion": True},
        "account": {"external_id": "cus_hooli"},
    }
    assert stack.api("post", "/api/v1/people", champion).status_code in (200, 201)
    ended = int(time.time()) - 120
    event = {
        "id": "evt_e2e_1",
        "object": "event",
        "type": "customer.subscription.deleted",
        "created": ended,
        "data": {
            "object": {
                "id": "sub_e2e",
                "object": "subscription",
                "customer": "cus_hooli",
                "ended_at": ended,
                "cancellation_details": {"feedback": "too_expensive", "comment": ""},
            }
        },
    }
    assert _stripe(stack, event, f"t={int(time.time())},v1={'0' * 64}").status_code == 401
    first = _stripe(stack, event)
    assert first.status_code == 200 and first.json()["status"] == "applied", first.text
    again = _stripe(stack, event)
    assert again.status_code == 200 and again.json()["new"] is False
    found = stack.api("get", f"/api/v1/accounts/{first.json()['account']}").json()
    assert found["churned_at"] and found["churn_reason"] == "too_expensive"
    assert [c["kind"] for c in found["changes"]] == ["churned"]
    assert found["changes"][0]["source"] == "stripe"
    # The churn has the champion asked why, by the worker, over SMTP.
    exit_mail = _until(lambda: stack.inbox.to("gavin@hooli.example"), 60, "the exit interview")
    assert "Before you go" in str(exit_mail[0]["Subject"])
    healthy = stack.api("get", "/api/v1/insights/health", params={"limit": 1000}).json()
    assert all(h["name"] != "Hooli" for h in healthy)  # churned: no longer scored
    session = requests.Session()
    assert _log_in(stack.base, "admin", stack.admin_password, session).status_code == 302
    page = session.get(f"{stack.base}/settings/integrations/", timeout=30)
    assert page.status_code == 200 and "customer.subscription.deleted" in page.text
    assert "Hooli" in page.text and "connected" in page.text


def test_it_takes_usage_from_segments_library_and_tickets_from_zendesk(stack: Stack) -> None:
    from segment.analytics import Client as SegmentClient

    account = {"name": "Pied Piper", "external_id": "acc-piper", "tier": "mid", "arr": 50000}
    created = stack.api("post", "/api/v1/accounts", account)
    assert created.status_code in (200, 201), created.text
    account_id = created.json()["id"]
    errors: list[Any] = []
    client = SegmentClient(
        write_key=SEGMENT_KEY,
        host=f"{stack.base}/api/v1/segment",
        on_error=lambda error, items: errors.append(error),
        max_retries=0,
    )
    client.group("richard", "acc-piper", {"seats": 10})
    # four people on 20 of the 30 days before; now one person, on 3 days
    for person in ("richard", "jared", "dinesh", "gilfoyle"):
        for day in range(20):
            at = datetime.now(UTC) - timedelta(days=31 + day)
            client.track(person, "Compressed", context={"groupId": "acc-piper"}, timestamp=at)
    for day in range(3):
        client.track("richard", "Compressed", timestamp=datetime.now(UTC) - timedelta(days=day))
    client.flush()
    client.join()
    assert errors == []
    detail = stack.api("get", f"/api/v1/accounts/{account_id}").json()
    assert detail["usage"]["active_days_30"] == 3, detail["usage"]
    assert detail["usage"]["active_people_previous_30"] == 4
    assert detail["usage"]["seats_paid"] == 10
    reasons = [r["reason"] for r in detail["health"]["reasons"]]
    assert "use down 96% in 30 days (active user-days 80 → 3)" in reasons, reasons
    assert "1 of 10 paid seats active in 30 days" in reasons
    # a Zendesk ticket event, signed as Zendesk signs it, for an organisation not known
    event = {
        "type": "zen:event-type:ticket.created",
        "id": "zd-e2e-1",
        "time": datetime.now(UTC).isoformat(),
        "detail": {
            "id": "501",
            "status": "OPEN",
            "priority": "URGENT",
            "organization_id": "zd-org-42",
            "created_at": (datetime.now(UTC) - timedelta(days=9)).isoformat(),
            "updated_at": datetime.now(UTC).isoformat(),
        },
    }
    raw = json.dumps(event).encode()
    stamp = str(int(time.time()))
    mac = hmac.new(ZENDESK_SECRET.encode(), stamp.encode() + raw, hashlib.sha256).digest()
    headers = {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }
    url = f"{stack.base}/api/v1/integrations/zendesk"
    forged = {**headers, "X-Zendesk-Webhook-Signature": "x"}
    bad = requests.post(url, data=raw, headers=forged, timeout=30)
    assert bad.status_code == 401
    first = requests.post(url, data=raw, headers=headers, timeout=30)
    assert first.status_code == 200 and first.json()["status"] == "unmatched", first.text
    # the admin maps the organisation on the integrations page
    session = requests.Session()
    assert _log_in(stack.base, "admin", stack.admin_password, session).status_code == 302
    page = session.get(f"{stack.base}/settings/integrations/", timeout=30)
    assert "zd-org-42" in page.text
    mapped = _submit(
        session,
        stack.base,
        "/settings/integrations/",
        {"source": "zendesk", "customer": "zd-org-42", "account": "acc-piper"},
        action="/settings/integrations/map-tickets",
        allow_redirects=True,
    )
    assert mapped.status_code == 200 and "zd-org-42 is Pied Piper" in mapped.text
    detail = stack.api("get", f"/api/v1/accounts/{account_id}").json()
    assert detail["tickets"]["urgent_or_high_open_over_7_days"] == 1
    assert "an urgent or high ticket open for over a week" in [
        r["reason"] for r in detail["health"]["reasons"]
    ]


def test_it_backtests_account_health_in_the_worker_when_an_admin_asks(stack: Stack) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    answers = []
    for i in range(20):
        made = stack.api(
            "post", "/api/v1/accounts", {"name": f"Backtest {i}", "external_id": f"bt-{i}"}
        )
        assert made.status_code in (200, 201), made.text
        for days in (300, 200):
            answers.append(
                {
                    "score": 2 if i < 10 else 10,
                    "created_at": (now - timedelta(days=days)).isoformat(),
                    "person": {
                        "email": f"p{i}@bt{i}.example",
                        "account": {"external_id": f"bt-{i}"},
                    },
                }
            )
    sent = stack.api("post", "/api/v1/responses/batch", {"responses": answers})
    assert sent.status_code in (200, 201) and not sent.json().get("rejected"), sent.text
    # eight of the ten detractor accounts and two promoter accounts left 100 days ago
    for i in [*range(8), 16, 17]:
        left = {"external_id": f"bt-{i}", "churned_at": (now - timedelta(days=100)).isoformat()}
        assert stack.api("post", "/api/v1/accounts", left).status_code == 200
    session = requests.Session()
    assert _log_in(stack.base, "admin", stack.admin_password, session).status_code == 302
    url = f"{stack.base}/insights/health/backtest/"
    assert _submit(session, stack.base, "/insights/health/backtest/").status_code == 302

    def ran() -> dict[str, Any] | None:
        found = stack.api("get", "/api/v1/insights/health/backtest").json()
        return found if found["result"].get("months") else None

    found = _until(ran, 120, "the worker to run the backtest")
    months = [m for m in found["result"]["months"] if m["churned"]]
    assert len(months) >= 3 and all(m["churned"] == 10 for m in months), found
    assert found["model_in_use"] == "written" and "needs 50" in found["result"]["fit"]["why"]
    # in the months before they left, the detractor accounts were the riskier ones
    assert all(0.5 < m["nps"] <= 1 and 0.5 < m["health"] <= 1 for m in months), months
    assert found["result"]["health"]["low"] <= found["result"]["health"]["auc"]
    page = session.get(url, timeout=30).text
    assert f"{found['result']['health']['auc']:.2f}" in page and "By month" in page


def test_it_syncs_hubspot_when_an_admin_asks(stack: Stack) -> None:
    crm = stack.crm.state
    crm.add_owner("21", OWNER[1], "Olivia", "Owner")
    crm.add_company(
        "501",
        name="Massive Dynamic",
        domain="massive.example",
        arr="250000",
        tier="enterprise",
        hubspot_owner_id="21",
        lifecyclestage="customer",
    )
    answer = {
        "person": {
            "email": "nina@massive.example",
            "name": "Nina",
            "account": {"external_id": "acc-massive", "name": "Massive Dynamic"},
        },
        "score": 9,
        "comment": "Solid",
    }
    assert stack.api("post", "/api/v1/responses", answer).status_code == 201
    session = requests.Session()
    assert _log_in(stack.base, "admin", stack.admin_password, session).status_code == 302
    url = f"{stack.base}/settings/integrations/hubspot/"
    assert _submit(session, stack.base, "/settings/integrations/hubspot/").status_code == 302

    def synced() -> str | None:
        page = session.get(url, timeout=30).text
        done = "Sync now" in page and "closeloop_nps" in crm.companies["501"]["properties"]
        return page if done else None

    page = _until(synced, 90, "the worker to sync HubSpot")
    assert "Last sync" in page
    scored = stack.api("get", "/api/v1/insights/health", params={"limit": 1000}).json()
    (account,) = [a for a in scored if a["name"] == "Massive Dynamic"]
    assert account["arr"] == 250000
    props = crm.companies["501"]["properties"]
    assert props["closeloop_latest_score"] == "9" and props["closeloop_nps"] == "100"


def _stripe(stack: Stack, event: dict[str, Any], signature: str = "") -> requests.Response:
    """POST `event` to the Stripe webhook, signed as Stripe signs (or with `signature`)."""
    payload = json.dumps(event)
    stamp = int(time.time())
    mac = hmac.new(STRIPE_SECRET.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256)
    return requests.post(
        f"{stack.base}/api/v1/integrations/stripe",
        data=payload,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": signature or f"t={stamp},v1={mac.hexdigest()}",
        },
        timeout=30,
    )


def test_it_opens_a_health_case_for_the_owner_when_an_accounts_health_falls(
    stack: Stack,
) -> None:
    account = {
        "name": "Initrode",
        "external_id": "cus_initrode",
        "tier": "smb",
        "arr": 9000,
        "owner_email": OWNER[1],
    }
    assert stack.api("post", "/api/v1/accounts", account).status_code in (200, 201)
    now = datetime.now(UTC).replace(microsecond=0)
    # Its champion answered 3 two months ago (no case: too old when it arrives) …
    old = {
        "score": 3,
        "created_at": (now - timedelta(days=60)).isoformat(),
        "person": {
            "email": "bill@initrode.example",
            "name": "Bill Lumbergh",
            "account": {"external_id": "cus_initrode"},
        },
    }
    sent = stack.api("post", "/api/v1/responses/batch", {"responses": [old]})
    assert sent.status_code in (200, 201) and not sent.json().get("rejected"), sent.text
    # … and this week Stripe says a payment failed and the subscription will cancel.
    days_ago = int(time.time()) - 3 * 86400
    failed = {
        "id": "evt_e2e_hc_1",
        "object": "event",
        "type": "invoice.payment_failed",
        "created": days_ago,
        "data": {"object": {"object": "invoice", "customer": "cus_initrode", "amount_due": 75000}},
    }
    cancels = {
        "id": "evt_e2e_hc_2",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": days_ago + 86400,
        "data": {
            "object": {
                "object": "subscription",
                "id": "sub_initrode",
                "customer": "cus_initrode",
                "cancel_at_period_end": True,
            },
            "previous_attributes": {"cancel_at_period_end": False},
        },
    }
    for event in (failed, cancels):
        answered = _stripe(stack, event)
        assert answered.status_code == 200 and answered.json()["status"] == "applied", answered.text
    # The day's look, as a second worker process would make it (the running worker made
    # today's at its start, before this account fell).
    _manage(
        stack.env,
        "shell",
        "-c",
        "from closeloop.insights.models import HealthWatchRun; "
        "HealthWatchRun.objects.all().delete(); "
        "from closeloop.insights.watch import handle_health_watch; handle_health_watch()",
    )
    found = stack.api("get", "/api/v1/cases", params={"loop": "health"}).json()
    (case,) = [c for c in found["results"] if c["account"]["name"] == "Initrode"]
    assert case["response"] is None and case["owner"]["email"] == OWNER[1]
    assert (case["health"]["was"], case["health"]["score"]) == (75, 30), case["health"]

    def alerted() -> list[Any]:
        return [m for m in stack.inbox.to(OWNER[1]) if "Initrode" in str(m["Subject"])]

    mail = _until(alerted, 60, "the owner's health case alert")[0]
    assert "Health fell 75 → 30" in str(mail["Subject"])
    slack = _until(
        lambda: [r for r in stack.slack.requests if b"Initrode" in r.body], 60, "the Slack alert"
    )
    assert b"cancellation scheduled" in slack[0].body


@pytest.mark.browser
def test_it_sends_a_survey_and_records_the_answer_given_through_its_links(stack: Stack) -> None:
    import delighted

    client = delighted.Client(api_key=stack.key, api_base_url=f"{stack.base}/v1/")
    person = delighted.Person.create(client=client, email="sam@survey.example", name="Sam")
    assert person.survey_scheduled_at is not None
    mail = _until(lambda: stack.inbox.to("sam@survey.example"), 60, "the survey email")[0]
    html = mail.get_body(preferencelist=("html",)).get_content()
    links = re.findall(r'href="([^"]*/s/a/[^"]+)"', html)
    assert len(links) == 11, "one link per score, 0 to 10"

    def answers() -> list[tuple[int, str]]:
        found = stack.api("get", "/api/v1/responses", params={"person": "sam@survey.example"})
        return [(r["score"], r["comment"]) for r in found.json()["items"]]

    # A mail scanner opens every number: nothing is recorded.
    for link in links:
        assert requests.get(link.replace("&amp;", "&"), timeout=30).status_code == 200
    assert answers() == []
    # A minute later the person clicks 9 in a real browser: the page's script saves it.
    time.sleep(11)  # past the window in which several numbers read as a scanner
    from playwright.sync_api import sync_playwright

    from .browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(links[9].replace("&amp;", "&"))
        page.wait_for_selector("#pending.saved")
        assert answers() == [(9, "")]
        page.fill("#comment", "Fast and friendly")
        page.click("button[type=submit]")
        page.wait_for_selector("p.saved")
        browser.close()
    assert answers() == [(9, "Fast and friendly")]


@pytest.mark.browser
def test_it_opens_every_page_of_the_top_bar_in_a_browser(stack: Stack) -> None:
    from playwright.sync_api import sync_playwright

    from .browser import CHROMIUM, CHROMIUM_ARGS, log_in

    # A case handed to the admin puts a count on the bell, the widest the top bar gets.
    case_id = _detractor(stack)["id"]
    moved = stack.api("post", f"/api/v1/cases/{case_id}/assign", {"owner": "admin@localhost"})
    assert moved.status_code == 200, moved.text
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        log_in(page, stack.base, "admin", stack.admin_password)
        assert page.inner_text(".bell .count").strip() != ""
        top = page.eval_on_selector(".topbar", "bar => bar.getBoundingClientRect().height")
        hrefs = page.eval_on_selector_all(".topbar nav a", "links => links.map(a => a.href)")
        assert len(hrefs) >= 10
        for href in hrefs:
            reply = page.goto(href)
            assert reply is not None and reply.status < 500, f"{href}: {reply and reply.status}"
            assert "Server Error" not in page.content(), href
        browser.close()
    assert top < 60, f"the top bar wraps at 1280 px ({top:.0f} px high)"


def _children_of(pid: int) -> list[int]:
    """The process's children, whichever of its threads started them (the worker's
    lanes are threads: the heavy lane starts the tuning)."""
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in children.read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return found


def _nice(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # the 19th field of /proc/<pid>/stat


def test_it_tunes_sentiment_in_the_background_once_and_resumes_after_a_stop(
    tmp_path: Path,
) -> None:
    import shutil

    from closeloop.themes import learning, sentiment

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(learning.shipped_path(), models / learning.shipped_path().name)
    data = tmp_path / "data"
    data.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{data / 'db.sqlite3'}",
        "DATA_DIR": str(data),
        "MODEL_DIR": str(models),
        "SENTIMENT_TUNING": "on",
        "WORKER_IDLE_SECONDS": "0.3",
    }
    _manage(env, "migrate", "--noinput")
    status = models / f"tuning-{sentiment.VERSION}" / "status.json"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "manage.py", "runworker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def step() -> int:
        try:
            return int(json.loads(status.read_text()).get("step", 0))
        except (OSError, ValueError):
            return 0

    first, second = start(), start()  # two workers on one MODEL_DIR: one tuning
    try:
        _until(lambda: step() >= 1, 240, "the background tuning's first steps")
        tuners = [c for w in (first, second) for c in _children_of(w.pid)]
        assert len(tuners) == 1, "exactly one process tunes"
        assert _nice(tuners[0]) == 19
    finally:
        for worker in (first, second):
            worker.send_signal(signal.SIGTERM)
        for worker in (first, second):
            worker.wait(90)
    stopped_at = step()
    checkpoint = models / f"tuning-{sentiment.VERSION}" / "checkpoint.pt"
    assert checkpoint.exists() and stopped_at >= 1  # saved on the way out
    assert not (models / sentiment.VERSION).exists()
    again = start()
    try:
        _until(lambda: step() > stopped_at, 240, "the tuning to resume")
        assert step() < stopped_at + 50, "it resumed where it stopped, not from zero"
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(90)
