"""The follow-up conversation: the hosted page and its JSON interface, the engine's
questions and summary, urgent signals, take-over, stop requests and email replies."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from closeloop.delivery.models import Channel, Delivery
from closeloop.loop import conversation as engine
from closeloop.loop import conversation_texts, outreach
from closeloop.loop.models import Activity, Conversation, FollowUpCase, Message, Notification
from closeloop.surveys.models import Account
from closeloop.team.models import User

from .conftest import ApiClient, answer_at, open_case
from .test_loop_replies import inbound_secret, mime, post

pytestmark = pytest.mark.django_db

COMMENT = "Setting up SSO took us three weeks and the guide was wrong."


__all__ = ["inbound_secret"]  # the inbound endpoint's secret, set for every test here


@pytest.fixture
def case(api: ApiClient, smb: Account) -> FollowUpCase:
    return open_case(api, smb, 3, name="Pat Lee", comment=COMMENT)


def path_of(talk: Conversation) -> str:
    return "/" + talk.url.split("/", 3)[3]


def say(client: Client, talk: Conversation, text: Any) -> Any:
    body = json.dumps({"text": text})
    return client.post(path_of(talk) + "messages", body, content_type="application/json")


def test_it_offers_the_conversation_in_the_first_outreach(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    email = Delivery.objects.get(case=case, purpose=Delivery.Purpose.OUTREACH)
    assert talk.url in email.body
    assert talk.status == Conversation.Status.NOT_STARTED
    assert talk.expires_at > timezone.now() + timedelta(days=29)
    # The offer sits before the signature, and the email still passes the linter's length.
    assert email.body.rstrip().endswith("Alex Morgan") or email.body.rstrip().split("\n")[-1]


def test_it_opens_by_thanking_naming_the_score_and_quoting_the_comment(
    case: FollowUpCase,
) -> None:
    talk = Conversation.objects.get(case=case)
    got = Client().get(path_of(talk) + "messages").json()
    assert got["status"] == "not_started" and got["done"] is False
    first = got["messages"][0]
    assert "3 out of 10" in first["text"] and "Setting up SSO took us three weeks" in first["text"]
    # The comment already says why: no open question, the onboarding probe instead.
    assert first["step"] == "probe"
    assert first["text"].endswith("Where did getting started stall?")
    assert not Message.objects.filter(conversation=talk).exists()  # nothing stored on a GET


def play(client: Client, talk: Conversation, replies: list[str]) -> list[dict[str, Any]]:
    """Answer in order; returns every closeloop message seen."""
    seen = client.get(path_of(talk) + "messages").json()["messages"]
    for reply in replies:
        got = say(client, talk, reply)
        assert got.status_code == 200, got.content
        seen += got.json()["messages"]
        if got.json()["done"]:
            break
    return seen


def test_it_asks_adaptive_questions_and_builds_the_summary(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    seen = play(
        Client(),
        talk,
        [
            "The SAML setup kept failing, and the help article showed screens that are gone.",
            "Two engineers lost most of a week and our rollout to 300 people slipped.",
            "A setup guide that matches the product, and someone who answers the same day.",
            "Yes, that's right.",
            "Yes please.",
        ],
    )
    steps = [m["step"] for m in seen]
    assert steps == ["probe", "impact", "fix", "confirm", "call", "close"]
    assert len([s for s in steps if s != "close"]) <= engine.MAX_QUESTIONS
    for message in seen:
        assert outreach.lint_message(message["text"], "en", message["step"] != "close") == []
    talk.refresh_from_db()
    assert talk.status == Conversation.Status.COMPLETED
    summary = talk.summary
    assert "onboarding" in summary["themes"]
    assert "SAML" in summary["root_cause"]
    assert "setup guide" in summary["desired_fix"]
    assert "rollout" in summary["impact"]
    assert summary["wants_call"] is True and summary["churn_intent"] is False
    assert summary["detractor_type"] == "invested"
    assert any("SAML" in q for q in summary["quotes"])
    # The close says what happens next and by when; the case holds that promise.
    assert "will call you" in seen[-1]["text"]
    promise = case.tasks.get(kind="commitment")
    assert "what happens next" in promise.title and promise.due_at > timezone.now()
    case.refresh_from_db()
    assert case.status == FollowUpCase.Status.IN_CONVERSATION and case.first_touch_at
    assert case.detractor_type == "invested"
    # Each answer is on the timeline, for the worker to read like any reply.
    replies = case.activities.filter(kind=Activity.Kind.REPLY_RECEIVED)
    assert replies.count() == 5 and all(a.themes_status == "pending" for a in replies)


def test_it_never_asks_what_the_customer_already_said(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    seen = play(
        Client(),
        talk,
        [
            "SAML failed twice. It cost us a week of work for two engineers. "
            "We'd like a setup guide that matches the screens.",
            "Yes.",
            "No thanks.",
        ],
    )
    steps = [m["step"] for m in seen]
    assert "impact" not in steps and "fix" not in steps
    assert steps[-1] == "close"
    talk.refresh_from_db()
    assert talk.summary["wants_call"] is False


def test_it_asks_the_open_question_when_there_is_no_comment(api: ApiClient, smb: Account) -> None:
    case = open_case(api, smb, 2, email="quiet@example.com")
    talk = Conversation.objects.get(case=case)
    first = Client().get(path_of(talk) + "messages").json()["messages"][0]
    assert first["step"] == "open"
    assert first["text"] == (
        "Thank you for your 2 out of 10, there. What was the main experience behind your score?"
    )


def test_it_stops_when_asked_to(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    client = Client()
    got = say(client, talk, "Please stop asking me questions.").json()
    assert got["done"] is True
    assert (
        got["messages"][0]["step"] == "close" and "no more questions" in got["messages"][0]["text"]
    )
    talk.refresh_from_db()
    assert talk.status == Conversation.Status.STOPPED
    assert say(client, talk, "one more thing").json() == {"messages": [], "done": True}
    # What they write after the end still reaches the owner.
    assert Notification.objects.filter(case=case, text__startswith="Conversation: ").exists()


def test_it_ends_early_and_politely_when_answers_get_short(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    seen = play(Client(), talk, ["dunno", "whatever", "fine"])
    assert seen[-1]["step"] == "close"
    talk.refresh_from_db()
    assert talk.status == Conversation.Status.COMPLETED
    assert len(talk.asked) == 2


def test_it_alerts_the_owner_at_once_of_churn_intent(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    before = case.priority
    say(Client(), talk, "Honestly we are not renewing in March; we're moving to Okta Workflows.")
    case.refresh_from_db()
    assert case.urgency == FollowUpCase.Urgency.HIGH
    assert case.priority > before
    assert case.detractor_type == "leaving"
    urgent = Notification.objects.get(case=case, text__startswith="Urgent")
    assert "churn intent" in urgent.text
    mail = Delivery.objects.get(case=case, subject__startswith="Urgent")
    assert "not renewing in March" in mail.body and mail.to == case.owner.email
    talk.refresh_from_db()
    assert talk.summary["churn_intent"] is True
    assert talk.summary["competitor"] == "Okta Workflows"
    assert talk.summary["urgency"] == "high"
    # Told once: saying it again alerts nobody again.
    say(Client(), talk, "As I said, we are not renewing.")
    assert Notification.objects.filter(case=case, text__startswith="Urgent").count() == 1


def test_it_alerts_the_executive_sponsor_of_a_top_account(
    api: ApiClient, enterprise: Account, admin_user: User
) -> None:
    enterprise.executive_sponsor = admin_user
    enterprise.save()
    case = open_case(api, enterprise, 2, email="cto@globex.example", comment="It is broken.")
    talk = Conversation.objects.get(case=case)
    say(Client(), talk, "Our lawyer will be in touch about the data breach.")
    told = set(
        Notification.objects.filter(case=case, text__startswith="Urgent").values_list(
            "user__username", flat=True
        )
    )
    assert admin_user.username in told
    assert case.owner is None or case.owner.username in told


def test_it_stops_asking_once_the_owner_takes_over(case: FollowUpCase, agent: User) -> None:
    talk = Conversation.objects.get(case=case)
    client = Client()
    say(client, talk, "The SAML setup kept failing.")
    engine.owner_says(talk, "Pat, I have our SSO engineer on it; can we talk at 3?", agent)
    got = say(client, talk, "Sure, 3 works.").json()
    assert got == {"messages": [], "done": True}
    talk.refresh_from_db()
    assert talk.status == Conversation.Status.TAKEN_OVER and talk.taken_over_by == agent
    messages = client.get(path_of(talk) + "messages").json()["messages"]
    assert [m["from"] for m in messages][-2:] == ["owner", "customer"]
    sent = Delivery.objects.filter(case=case, body__startswith="Pat, I have our SSO").get()
    assert sent.to == "pat@example.com" and "Alex" in sent.from_email


def test_it_refuses_bad_tokens_and_expired_links(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    client = Client()
    good = path_of(talk)
    assert client.get("/c/nonsense/").status_code == 404
    assert client.get("/c/nonsense/messages").status_code == 404
    forged = good.replace(talk.token, "A" * len(talk.token))
    assert client.get(forged).status_code == 404
    tampered = good[:-3] + ("x" if good[-3] != "x" else "y") + good[-2:]
    assert client.get(tampered + "messages").status_code == 404
    talk.expires_at = timezone.now() - timedelta(seconds=1)
    talk.save()
    page = client.get(good)
    assert page.status_code == 410
    assert case.owner.email in page.content.decode()
    got = say(client, talk, "hello")
    assert got.status_code == 410 and case.owner.email in got.json()["detail"][0]["msg"]
    assert not Message.objects.filter(conversation=talk).exists()


def test_it_answers_bad_input_with_422_naming_text(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    client = Client()
    url = path_of(talk) + "messages"
    for body in ({"text": ""}, {"text": "   "}, {"text": "x" * 5001}, {"text": 4}, {}):
        got = client.post(url, json.dumps(body), content_type="application/json")
        assert got.status_code == 422, body
        assert got.json()["detail"][0]["loc"] == ["body", "text"]
    for raw in (b"not json", b"[1, 2]", b"\xff\xfe"):
        got = client.post(url, raw, content_type="application/json")
        assert got.status_code == 422 and got.json()["detail"][0]["loc"] == ["body"]
    assert say(client, talk, "a\x00b").status_code == 422
    assert not Message.objects.filter(conversation=talk).exists()
    # The page says it in the customer's words and keeps what they typed.
    page = client.post(path_of(talk), {"text": "y" * 5001})
    assert page.status_code == 422 and "under 5,000 characters" in page.content.decode()


def test_it_limits_answers_per_token(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    client = Client()
    Conversation.objects.filter(pk=talk.pk).update(status=Conversation.Status.TAKEN_OVER)
    codes = [
        say(client, talk, f"message {i}").status_code for i in range(engine.ANSWERS_PER_MINUTE + 1)
    ]
    assert codes[:-1] == [200] * engine.ANSWERS_PER_MINUTE and codes[-1] == 429


def test_it_works_without_javascript(case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    client = Client()
    page = client.get(path_of(talk))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'method="post"' in html and "Where did getting started stall?" in html
    sent = client.post(path_of(talk), {"text": "The SAML setup kept failing on the IdP step."})
    assert sent.status_code == 302 and sent["Location"] == path_of(talk)
    html = client.get(path_of(talk)).content.decode()
    assert "The SAML setup kept failing on the IdP step." in html
    assert "How much does this get in your team&#x27;s way?" in html
    # htmx asks for the page in place: no redirect, the new question in the answer.
    swapped = client.post(path_of(talk), {"text": "A week lost."}, HTTP_HX_REQUEST="true")
    assert swapped.status_code == 200 and "What would fix this for you?" in swapped.content.decode()


def test_it_continues_by_email_threaded_from_the_owner(case: FollowUpCase) -> None:
    raw = mime(
        case.reply_address,
        body="The SAML setup kept failing and the guide was out of date.",
        message_id="<reply-1@mail.example.com>",
    )
    assert post(raw).status_code == 202
    talk = Conversation.objects.get(case=case)
    messages = list(talk.messages.all())
    assert [m.sender for m in messages] == ["closeloop", "customer", "closeloop"]
    assert messages[0].text == "What was the main experience behind your score?"
    assert messages[1].via == "email"
    nxt = (
        Delivery.objects.filter(case=case, purpose=Delivery.Purpose.OUTREACH)
        .order_by("-created_at")
        .first()
    )
    assert nxt is not None and nxt.body.startswith(messages[2].text)
    assert nxt.subject == "Re: Your 4/10"
    assert nxt.headers["In-Reply-To"] == "<reply-1@mail.example.com>"
    first = (
        Delivery.objects.filter(case=case, purpose=Delivery.Purpose.OUTREACH)
        .order_by("created_at")
        .first()
    )
    assert first is not None and first.message_id in nxt.headers["References"]
    assert "Alex" in nxt.from_email and nxt.reply_to == case.reply_address
    # The reply is on the timeline once (as a reply), not twice.
    assert case.activities.filter(kind=Activity.Kind.REPLY_RECEIVED).count() == 1


def test_it_shows_the_conversation_in_the_case_api(api: ApiClient, case: FollowUpCase) -> None:
    talk = Conversation.objects.get(case=case)
    say(Client(), talk, "We are evaluating Medallia because exports keep failing.")
    got = api.get_json(f"/api/v1/cases/{case.pk}").json()["conversation"]
    assert got["url"] == talk.url and got["status"] == "active"
    assert [m["from"] for m in got["messages"]] == ["closeloop", "customer", "closeloop"]
    assert got["summary"]["competitor"] == "Medallia"
    assert got["summary"]["detractor_type"] == "evaluating"


def test_it_sends_conversation_completed_to_channels(api: ApiClient, case: FollowUpCase) -> None:
    Channel.objects.create(kind=Channel.Kind.SLACK, url="http://127.0.0.1:9/slack")
    Channel.objects.create(
        kind=Channel.Kind.WEBHOOK, url="http://127.0.0.1:9/hook", events=["conversation.completed"]
    )
    talk = Conversation.objects.get(case=case)
    say(Client(), talk, "Stop, please.")
    slack = Delivery.objects.get(kind=Delivery.Kind.SLACK, event="conversation.completed")
    text = json.dumps(slack.payload)
    assert "Detractor type" in text and "Setting up SSO took us three weeks" in text, text
    hook = Delivery.objects.get(kind=Delivery.Kind.WEBHOOK, event="conversation.completed")
    assert hook.payload["data"]["conversation"]["status"] == "stopped"
    assert hook.payload["data"]["case"]["id"] == case.pk


def test_it_speaks_the_customers_language(api: ApiClient, smb: Account) -> None:
    body = answer_at(smb, 3, "jonas@example.de", "Jonas Weber")
    body["person"]["locale"] = "de"
    body["comment"] = "Der Support hat eine Woche gebraucht, um zu antworten."
    assert api.post_json("/api/v1/responses", body).status_code == 201
    case = FollowUpCase.objects.get(person__email="jonas@example.de")
    talk = Conversation.objects.get(case=case)
    first = Client().get(path_of(talk) + "messages").json()["messages"][0]
    assert first["text"].startswith("Danke für Ihre 3 von 10, Jonas")
    seen = play(
        Client(),
        talk,
        [
            "Das Ticket zum Export blieb sieben Tage offen.",
            "Wir verlieren Stunden pro Woche.",
            "Eine Antwort am selben Tag.",
            "Ja.",
            "Nein danke.",
        ],
    )
    assert seen[-1]["step"] == "close" and "meldet sich bis" in seen[-1]["text"]
    for message in seen:
        assert outreach.lint_message(message["text"], "de", message["step"] != "close") == []


@pytest.mark.parametrize("lang", conversation_texts.LANGUAGES)
def test_it_keeps_every_own_sentence_within_the_linter(lang: str) -> None:
    t = conversation_texts.texts(lang)
    values = {
        "score": "3",
        "first_name": "Pat",
        "owner_name": "Alex Morgan",
        "owner_first_name": "Alex",
        "quote": " ".join(["word"] * engine.QUOTE_WORDS),
        "understanding": "“"
        + " ".join(["word"] * engine.QUOTE_WORDS)
        + "”, "
        + str(t["and_fix"]).format(fix=" ".join(["word"] * 12)),
        "booking": "https://cal.example/alex",
        "date": "1 December",
    }
    acks = t["ack"]
    assert isinstance(acks, list)
    first = ("open", "general_probe")  # what an opening can ask
    for key in (*first, "impact", "alternatives", "fix", "confirm", "call", "call_booking"):
        question = str(t[key]).format(**values)
        openers = [*acks, t["ack_correction"]]
        if key in first:
            openers.append(str(t["thanks_comment"]).format(**values))
        for opener in openers:
            message = f"{opener} {question}"
            assert outreach.lint_message(message, lang) == [], (key, message)
    for key in ("close", "close_call", "close_stop", "close_short"):
        assert outreach.lint_message(str(t[key]).format(**values), lang, asks=False) == []
    for english, translations in conversation_texts.PROBES.items():
        assert outreach.lint_message(conversation_texts.probe(english, lang), lang) == []
        assert len(translations) == 5


def test_it_flags_messages_that_break_the_rules() -> None:
    assert outreach.lint_message("Sorry about that. What happened?")[0].rule == "apology"
    assert [f.rule for f in outreach.lint_message("What happened? And when?")] == ["one-question"]
    assert outreach.lint_message("How do we get a 10 from you?")[0].rule == "score-begging"
    assert outreach.lint_message("We can offer a discount. What happened?")[0].rule == "discount"
    assert outreach.lint_message(" ".join(["word"] * 60) + "?")[0].rule == "length"
    # The customer's own words, quoted, are theirs: "refund" in a quote is not our offer.
    quoted = "If I understood you: “I want a refund”. What did I miss?"
    assert outreach.lint_message(quoted) == []


def test_it_keeps_the_answer_when_the_models_fail(
    case: FollowUpCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(texts: Any) -> Any:
        raise RuntimeError("model file unreadable")

    monkeypatch.setattr(engine.analysis, "analyse", broken)
    talk = Conversation.objects.get(case=case)
    got = say(Client(), talk, "The SAML setup kept failing on the IdP step.")
    assert got.status_code == 200 and got.json()["messages"]
    assert Message.objects.filter(conversation=talk, sender="customer").count() == 1


def test_it_reads_signals_in_the_customers_words() -> None:
    from closeloop.loop import signals

    said = signals.read("We are switching to Qualtrics next month.")
    assert said.churn and said.competitor == "Qualtrics"
    assert signals.read("We are not going to cancel, but it hurts.").churn == ""
    assert signals.read("We're evaluating Medallia right now.").competitor == "Medallia"
    assert signals.read("Could you give me a call on Thursday?").call
    assert signals.read("This looks like a GDPR violation.").legal
    assert signals.read("Stop asking me questions").stop
    assert signals.read("Wir werden kündigen.").churn
    assert signals.read("Nous allons résilier le contrat.").churn
    assert signals.read("We moved to the new office last week.").churn == ""
    assert signals.says_yes("Yes please") is True and signals.says_yes("No thanks") is False
    assert re.fullmatch(r".+", signals.read("We have been customers for years.").loyal)


def test_it_offers_the_owners_booking_link_with_the_call(case: FollowUpCase, agent: User) -> None:
    agent.booking_url = "https://cal.example/alex/15min"
    agent.save()
    talk = Conversation.objects.get(case=case)
    seen = play(
        Client(),
        talk,
        [
            "The SAML setup kept failing on the IdP step.",
            "A week lost.",
            "A guide that matches the screens.",
            "Yes.",
        ],
    )
    offer = next(m for m in seen if m["step"] == "call")
    assert "https://cal.example/alex/15min" in offer["text"]
    assert outreach.lint_message(offer["text"]) == []


def test_it_lets_the_owner_take_over_from_the_case_page(case: FollowUpCase, agent: User) -> None:
    talk = Conversation.objects.get(case=case)
    say(Client(), talk, "The SAML setup kept failing.")
    page = Client()
    page.force_login(agent)
    html = page.get(f"/cases/{case.pk}/").content.decode()
    assert "Follow-up conversation" in html and "The SAML setup kept failing." in html
    assert page.get(f"/cases/{case.pk}/conversation").status_code == 200
    page.post(f"/cases/{case.pk}/act", {"action": "take_over"})
    talk.refresh_from_db()
    assert talk.status == Conversation.Status.TAKEN_OVER
    page.post(f"/cases/{case.pk}/act", {"action": "converse", "text": "Pat, I am on it."})
    assert talk.messages.filter(sender="owner", text="Pat, I am on it.").exists()
    refused = page.post(f"/cases/{case.pk}/act", {"action": "converse", "text": "  "}, follow=True)
    assert "write something first" in refused.content.decode()
    assert say(Client(), talk, "Thanks!").json() == {"messages": [], "done": True}


def test_it_reopens_a_closed_case_when_the_customer_writes_on_the_page(
    case: FollowUpCase, agent: User
) -> None:
    case.close("resolved", "fixed", "fixed the SSO guide", agent)
    talk = Conversation.objects.get(case=case)
    say(Client(), talk, "It is still failing for our second team.")
    case.refresh_from_db()
    assert case.status == FollowUpCase.Status.IN_CONVERSATION and not case.resolution
    assert case.activities.filter(kind=Activity.Kind.REOPENED).exists()


def test_it_filters_cases_by_detractor_type_and_urgency(
    api: ApiClient, case: FollowUpCase, smb: Account, agent: User
) -> None:
    other = open_case(api, smb, 4, email="quiet@example.com")
    say(Client(), Conversation.objects.get(case=case), "We will cancel at the end of the month.")
    leaving = api.get_json("/api/v1/cases", {"detractor_type": "leaving"}).json()
    assert [c["id"] for c in leaving["results"]] == [case.pk]
    assert leaving["results"][0]["urgency"] == "high"
    unknown = api.get_json("/api/v1/cases", {"detractor_type": "unknown"}).json()
    assert [c["id"] for c in unknown["results"]] == [other.pk]
    urgent = api.get_json("/api/v1/cases", {"urgency": "high"}).json()
    assert [c["id"] for c in urgent["results"]] == [case.pk]
    assert api.get_json("/api/v1/cases", {"detractor_type": "angry"}).status_code == 422
    page = Client()
    page.force_login(agent)
    html = page.get("/cases/", {"view": "all", "type": "leaving"}).content.decode()
    assert f"/cases/{case.pk}/" in html and f"/cases/{other.pk}/" not in html
    assert "Leaving" in html and "urgent" in html


def test_it_reads_the_comment_once_per_conversation(
    case: FollowUpCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    real = engine.analysis.analyse

    def counting(texts: Any) -> Any:
        read.extend(texts)
        return real(texts)

    monkeypatch.setattr(engine.analysis, "analyse", counting)
    talk = Conversation.objects.get(case=case)
    client = Client()
    client.get(path_of(talk) + "messages")
    say(client, talk, "The SAML setup kept failing on the IdP step.")
    say(client, talk, "Two engineers lost a week.")
    assert read.count(COMMENT) == 1
    assert Conversation.objects.get(pk=talk.pk).comment_themes
