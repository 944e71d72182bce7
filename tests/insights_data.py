"""Generated customers and answers for the insights tests, which recompute every
figure by brute force in Python and compare it with the SQL aggregates."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.utils import timezone

from closeloop.surveys.models import Account, Person, Response, Survey

TIERS = ["enterprise", "mid-market", "smb", ""]
PLANS = ["Pro", "Team", "Starter", ""]
SIZES = ["1-10", "11-50", "51-200", "201-1000", ""]
INDUSTRIES = ["Fintech", "Retail", "Health", "Education", ""]
REGIONS = ["emea", "amer", "apac"]


@dataclass
class World:
    accounts: list[Account]
    people: list[Person]
    surveys: list[Survey]
    responses: list[Response]


def generate(
    seed: int,
    start: datetime = datetime(2025, 6, 1, tzinfo=UTC),
    days: int = 420,
    accounts: int = 40,
    people: int = 160,
    answers: int = 900,
) -> World:
    """Accounts of every tier, people (some without an account), answers spread over
    `days` with scores that drift by tier, so trends and segments have something to find."""
    rng = random.Random(seed)
    made_accounts = Account.objects.bulk_create(
        Account(
            name=f"Account {i}",
            external_id=f"acc-{seed}-{i}",
            tier=rng.choice(TIERS),
            plan=rng.choice(PLANS),
            company_size=rng.choice(SIZES),
            industry=rng.choice(INDUSTRIES),
            arr_cents=rng.randrange(0, 50_000_00),
            customer_since=(
                None if i % 7 == 0 else (start - timedelta(days=rng.randrange(-200, 2500))).date()
            ),
        )
        for i in range(accounts)
    )
    made_people = Person.objects.bulk_create(
        Person(
            email=f"p{i}@gen{seed}.example",
            account=None if i % 11 == 0 else rng.choice(made_accounts),
        )
        for i in range(people)
    )
    surveys = [
        Survey.objects.create(name=f"Relationship {seed}", slug=f"rel-{seed}"),
        Survey.objects.create(name=f"After support {seed}", slug=f"support-{seed}"),
    ]
    rows = []
    for _ in range(answers):
        person = rng.choice(made_people)
        at = start + timedelta(seconds=rng.randrange(days * 86400))
        tier = person.account.tier if person.account else ""
        # Enterprise slides over time, smb rises: segments that move against each other.
        drift = (at - start).days / days
        bias = {"enterprise": -3 * drift, "smb": 3 * drift}.get(tier, 0)
        score = max(0, min(10, round(rng.gauss(7.5 + bias, 2.5))))
        props: dict[str, object] = {"region": rng.choice(REGIONS)}
        if rng.random() < 0.2:
            props["seats"] = rng.choice([5, 10, "10"])
        if rng.random() < 0.1:
            props["region"] = ""
        rows.append(
            Response(
                person=person,
                account=person.account,
                survey=rng.choice(surveys),
                score=score,
                created_at=at,
                updated_at=at,
                properties=props,
            )
        )
    made = Response.objects.bulk_create(rows)
    return World(made_accounts, made_people, surveys, made)


def local_day(moment: datetime, zone: str) -> date:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(zone)).date()


def generate_cases(world: World, seed: int, owners: list[Any], teams: list[Any]) -> list[Any]:
    """A detractor case for most detractor answers, in every state the program metrics
    tell apart: touched in time or late or never, replied or not, closed each way,
    on accounts that churned before or after."""
    from closeloop.loop import next_answers
    from closeloop.loop.models import Activity, FollowUpCase, TriagePolicy

    rng = random.Random(seed)
    policy = TriagePolicy.current()
    actions = ["call", "personal_email_call", "automated_email_survey", "automated_one_question"]
    cases = []
    for r in world.responses:
        if r.score > 6 or rng.random() < 0.2:
            continue
        touch = rng.choice([None, 1, 5, 30, 47, 49, 80, 200])
        status = rng.choice(["open", "contacted", "in_conversation", "closed", "closed"])
        resolution = rng.choice(["resolved", "cant_fix", "no_response", "superseded"])
        cases.append(
            FollowUpCase(
                person=r.person,
                account=r.account,
                response=r,
                score=r.score,
                action=rng.choice(actions),
                policy=policy,
                rule="generated",
                owner=rng.choice([*owners, None]),
                team=rng.choice([*teams, None]),
                status=status,
                resolution=resolution if status == "closed" else "",
                created_at=r.created_at + timedelta(minutes=rng.randrange(1, 30)),
                first_touch_at=(
                    None if touch is None else r.created_at + timedelta(hours=touch, minutes=30)
                ),
            )
        )
    made = FollowUpCase.objects.bulk_create(cases)
    # Cases written around closeloop get their next answers as the migration gave them.
    next_answers.backfill()
    activities = []
    for case in made:
        roll = rng.random()
        if roll < 0.25:
            activities.append(Activity(case=case, kind="reply_received", text="thanks"))
        elif roll < 0.4:
            outcome = rng.choice(["talked", "resolved_on_call", "no_answer", "left_voicemail"])
            activities.append(Activity(case=case, kind="call_logged", data={"outcome": outcome}))
        activities.append(Activity(case=case, kind="note", text="noted"))
    Activity.objects.bulk_create(activities)
    _conversations(made, random.Random(seed + 7))
    for account in world.accounts:
        if rng.random() < 0.3:
            # A churn is in the past (the API refuses a churned_at to come).
            account.churned_at = min(
                world.responses[0].created_at + timedelta(days=rng.randrange(0, 420)),
                timezone.now() - timedelta(hours=1),
            )
            account.save(update_fields=["churned_at"])
    return made


def _conversations(cases: list[Any], rng: random.Random) -> None:
    """Follow-up conversations on most cases: not started, or answered some questions and
    then completed, stopped, taken over or left active, with or without a root cause."""
    from closeloop.loop.models import Conversation, Message

    talks, messages = [], []
    for case in cases:
        if rng.random() < 0.3:
            continue  # a case from before the conversation existed: plain email
        status = rng.choice(["not_started", "active", "completed", "stopped", "taken_over"])
        started = status != "not_started"
        summary = {"root_cause": rng.choice(["", "the export times out"]) if started else ""}
        talks.append(
            Conversation(
                case=case,
                status=status,
                summary=summary,
                started_at=case.created_at + timedelta(hours=2) if started else None,
            )
        )
    made = Conversation.objects.bulk_create(talks)
    for talk in made:
        if talk.started_at is None:
            continue
        for n in range(rng.randint(1, 6)):
            messages.append(Message(conversation=talk, sender="closeloop", text=f"q{n}?"))
            messages.append(Message(conversation=talk, sender="customer", text=f"a{n}"))
    Message.objects.bulk_create(messages)


def generate_silence(world: World, seed: int, now: datetime) -> None:
    """Invitations after some people's last answers: two ignored ones make them silent,
    one or a failed one does not."""
    from closeloop.surveys.models import SurveyRequest

    rng = random.Random(seed)
    last: dict[int, datetime] = {}
    for r in world.responses:
        if r.created_at < now:
            last[r.person_id] = max(last.get(r.person_id, r.created_at), r.created_at)
    requests = []
    for person in world.people:
        if person.pk not in last or rng.random() < 0.4:
            continue
        after = last[person.pk]
        for n in range(rng.choice([1, 2, 2, 3])):
            sent = after + timedelta(days=rng.randrange(1, 60) + 30 * n)
            status = "failed" if rng.random() < 0.1 else "sent"
            requests.append(
                SurveyRequest(
                    person=person,
                    survey=world.surveys[0],
                    status=status,
                    scheduled_at=sent,
                    sent_at=sent if sent < now else None,
                    created_at=sent,
                )
            )
    SurveyRequest.objects.bulk_create(requests)


def tag_themes(responses: list[Response]) -> None:
    """Give each answer a model ThemeTag for every theme slug in its `tags` list, as the
    worker would have: the insight figures read theme tags."""
    from closeloop.themes.models import Theme, ThemeTag

    themes = {t.slug: t for t in Theme.objects.all()}
    ThemeTag.objects.bulk_create(
        ThemeTag(response=r, theme=themes[slug], confidence=0.9, source="model")
        for r in responses
        if isinstance(r.tags, list)
        for slug in set(r.tags)
    )
