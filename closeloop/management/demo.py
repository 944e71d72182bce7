"""A believable twelve-month history for a new install, every row marked `is_demo`.

Comments come from small phrase banks per theme (docs/domain.md §6), mixed
so no two read quite alike. Mid-market accounts drift down over the year, so
the segment views have something real to find.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from closeloop.core import nps
from closeloop.loop import next_answers
from closeloop.loop.intake import record_responses
from closeloop.surveys.ingest import AccountData, PersonData, ResponseData
from closeloop.surveys.models import Account, Person, Response
from closeloop.team.models import Role, User

THEME_PHRASES: dict[str, list[str]] = {
    "usability": [
        "The new editor is confusing, it took me ages to find the export button",
        "Too many clicks to do something simple like assigning a task",
        "The settings page is a maze",
        "Hard to use for anyone who is not technical on my team",
        "I still can't figure out how the permissions work",
    ],
    "missing-feature": [
        "We really need SSO with Okta, it's a blocker for our security team",
        "No way to schedule reports, we paste numbers into slides by hand",
        "Please add custom fields on accounts",
        "Missing a proper audit log",
        "There's no bulk edit, which makes cleanups painful",
    ],
    "bugs": [
        "The dashboard shows wrong totals after the last update",
        "Sync breaks every few days and duplicates contacts",
        "Got a 500 error three times this week while saving",
        "Data in the CSV export doesn't match what the screen shows",
        "Notifications arrive twice, sometimes not at all",
    ],
    "performance": [
        "Pages take forever to load in the morning",
        "Search is really slow once you have more than a few thousand records",
        "We had two outages during our busiest week",
        "Timeouts on the reports page, constantly",
        "The app freezes when I open a large project",
    ],
    "support": [
        "Support took five days to answer a simple question",
        "Every ticket gets a canned reply that doesn't help",
        "Hard to reach a human when something is on fire",
        "Support closed my ticket without fixing anything",
        "Nobody followed up on my escalation",
    ],
    "onboarding": [
        "Onboarding was rushed, half my team never got trained",
        "The migration from our old tool lost a lot of history",
        "Setting it up took three weeks longer than we were told",
        "Getting started was overwhelming, too much at once",
    ],
    "pricing": [
        "Too expensive for what we actually use",
        "The price increase at renewal was hard to justify internally",
        "Per-seat pricing punishes us for growing",
        "We pay for features we never touch",
    ],
    "billing": [
        "We were charged twice in March and it took weeks to get a refund",
        "Invoices don't show our PO number, finance keeps rejecting them",
        "Card payment failed and we were locked out without warning",
        "The contract auto-renewed without any notice",
    ],
    "integrations": [
        "The Salesforce integration keeps dropping fields",
        "Your API rate limits are too low for our sync",
        "The Slack app posts to the wrong channel half the time",
        "No HubSpot integration, so we copy things by hand",
    ],
    "documentation": [
        "The docs are out of date, the screenshots don't match the product",
        "Couldn't find anything in the help center about webhooks",
        "API docs are missing examples",
        "Help articles contradict each other",
    ],
}
# A reason closeloop has no default theme for, growing over the last quarter: discovery
# finds it among the unclassified comments.
EMERGING_PHRASES = [
    "The AI assistant makes up answers that sound right but aren't",
    "Copilot summaries of our calls miss the important parts",
    "The AI writing suggestions are generic and nobody on my team uses them",
    "The chatbot in the app keeps hallucinating features you don't have",
    "AI-generated insights contradict our own numbers",
    "Stop pushing the AI assistant on every screen, it's in the way",
    "Your AI thing confidently told my rep the wrong renewal date",
    "Half the AI recommendations are irrelevant to our industry",
    "The AI summary button gives a different answer every time I click it",
    "We stopped trusting the AI forecasts after they were wrong two months in a row",
]
EMERGING_DAYS = 90
PASSIVE_PHRASES = [
    "It does the job, nothing special",
    "Solid overall but reporting could be better",
    "Good product, a bit pricey",
    "Works fine, support could be faster",
    "We like it but the UI feels dated",
    "",
]
PROMOTER_PHRASES = [
    "Love it, saves my team hours every week",
    "Best tool we've bought this year",
    "Support is fantastic, always quick and helpful",
    "Easy to use and the team adopted it right away",
    "Great product, the integrations just work",
    "",
]
OPENERS = ["", "Honestly, ", "To be frank, ", "Overall ok but ", "", "Hmm. "]

TIERS = [
    ("enterprise", 0.15, (80_000, 400_000)),
    ("mid-market", 0.35, (15_000, 80_000)),
    ("smb", 0.5, (2_000, 15_000)),
]
TIER_MEAN = {"enterprise": 9.0, "mid-market": 8.9, "smb": 8.5}
INDUSTRIES = ["software", "healthcare", "finance", "retail", "education", "logistics"]
SIZES = ["1-10", "11-50", "51-200", "201-1000", "1000+"]
PLANS = {"enterprise": "Enterprise", "mid-market": "Business", "smb": "Starter"}
NAME_A = [
    "North",
    "Blue",
    "Bright",
    "Iron",
    "Silver",
    "Red",
    "Green",
    "Swift",
    "Clear",
    "Stone",
    "Summit",
    "Harbor",
    "Maple",
    "Cedar",
    "Atlas",
    "Nova",
    "Orbit",
    "Pixel",
    "Quartz",
    "River",
]
NAME_B = [
    "Labs",
    "Systems",
    "Works",
    "Logistics",
    "Health",
    "Analytics",
    "Retail",
    "Capital",
    "Learning",
    "Foods",
    "Cloud",
    "Media",
    "Freight",
    "Bank",
    "Studio",
]
FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jon",
    "Kira",
    "Liam",
    "Mei",
    "Nora",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tariq",
    "Uma",
    "Vera",
]
LAST = [
    "Silva",
    "Khan",
    "Novak",
    "Okafor",
    "Lee",
    "Garcia",
    "Rossi",
    "Schmidt",
    "Dubois",
    "Ito",
    "Nair",
    "Cohen",
    "Berg",
    "Walsh",
    "Moreau",
    "Ahmed",
]
ROLES = ["admin", "end user", "team lead", "executive", "developer"]


def _comment(rng: random.Random, score: int) -> tuple[str, list[str]]:
    if score >= 9:
        return rng.choice(PROMOTER_PHRASES), []
    if score >= 7:
        return rng.choice(PASSIVE_PHRASES), []
    themes = rng.sample(sorted(THEME_PHRASES), k=2 if rng.random() < 0.2 else 1)
    text = ". ".join(rng.choice(THEME_PHRASES[t]) for t in themes)
    if rng.random() < 0.1:
        return "", []
    return _opened(rng.choice(OPENERS), text), themes


def _opened(opener: str, text: str) -> str:
    # Mid-sentence openers lower-case the first word, unless it is an acronym ("API docs").
    if opener and not opener.endswith(". ") and not text[:2].isupper():
        text = text[0].lower() + text[1:]
    return opener + text


def _score(rng: random.Random, tier: str, months_ago: float) -> int:
    if rng.random() < 0.04:
        return rng.randint(0, 3)  # the few customers something went badly wrong for
    mean = TIER_MEAN[tier]
    if tier == "mid-market":
        # The drift: mid-market loses about 1.5 points over the year, newest months worst.
        mean -= 1.5 * (12 - months_ago) / 12
    return max(0, min(10, round(rng.gauss(mean, 1.9))))


@transaction.atomic
def seed(accounts: int = 200, people: int = 2000, responses: int = 6000, seed: int = 42) -> int:
    """Create the demo history; returns the number of responses made."""
    rng = random.Random(seed)
    emerging = random.Random(seed + 1)  # its own stream: the rest of the data stays as it was
    now = timezone.now()
    owners = _owners()
    account_rows: list[AccountData] = []
    for i in range(accounts):
        tier = rng.choices([t[0] for t in TIERS], weights=[t[1] for t in TIERS])[0]
        low, high = next(t[2] for t in TIERS if t[0] == tier)
        account_rows.append(
            AccountData(
                external_id=f"demo-acc-{i:04d}",
                name=f"{rng.choice(NAME_A)} {rng.choice(NAME_B)} {i}",
                tier=tier,
                arr_cents=rng.randrange(low, high) * 100,
                currency="USD",
                plan=PLANS[tier],
                company_size=rng.choice(SIZES),
                industry=rng.choice(INDUSTRIES),
                customer_since=date(2021, 1, 1) + timedelta(days=rng.randrange(0, 1700)),
                # Owners are known before the answers arrive, so triage routes to them.
                owner_email=owners[i % len(owners)].email,
            )
        )
    person_rows = [
        PersonData(
            email=f"{rng.choice(FIRST).lower()}.{i}@customer{i % accounts}.demo.example",
            name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            properties={"role": rng.choice(ROLES), "demo": True},
            account=account_rows[i % accounts],
        )
        for i in range(people)
    ]
    items: list[ResponseData] = []
    for _ in range(responses):
        person = rng.choice(person_rows)
        days_ago = rng.uniform(0, 365)
        tier = person.account.tier if person.account and person.account.tier else "smb"
        score = _score(rng, tier, days_ago / 30.4)
        if OUTAGE_DAYS_AGO - 14 < days_ago <= OUTAGE_DAYS_AGO and rng.random() < 0.35:
            score = max(0, score - rng.randint(2, 5))  # the outage's detractor spike
        comment, themes = _comment(rng, score)
        if score <= 6 and days_ago < EMERGING_DAYS and emerging.random() < 0.12:
            phrase = emerging.choice(EMERGING_PHRASES)
            comment, themes = _opened(emerging.choice(OPENERS), phrase), []
        when = now - timedelta(days=days_ago)
        items.append(
            ResponseData(
                person=person,
                score=score,
                comment=comment,
                created_at=when,
                tags=themes,
                source=Response.Source.EMAIL,
            )
        )
    items.sort(key=lambda item: item.created_at or now)
    for start in range(0, len(items), 500):
        record_responses(items[start : start + 500])
    Account.objects.filter(external_id__startswith="demo-acc-").update(is_demo=True)
    Person.objects.filter(account__is_demo=True).update(is_demo=True)
    Response.objects.filter(person__is_demo=True).update(is_demo=True)
    _case_history(rng, owners)
    _roadmap(owners)
    _sheets(owners)
    _incidents(now)
    _discovery()
    _conversations()
    return len(items)


# How some recent detractors answered their follow-up conversation: in order, with the
# read-back ("confirm") and the call offer ("call") answered as a person would.
DEMO_CONVERSATIONS: list[dict[str, Any]] = [
    {
        "replies": [
            "It happened again on Monday, in front of a customer, and nobody on your side "
            "could tell us why.",
            "Two of us lost most of a day working around it before our board meeting.",
            "Fix it for good, and warn us when something like this breaks.",
        ],
        "confirm": "Yes, that's it.",
        "call": "Yes please, Thursday works.",
    },
    {
        "replies": [
            "Our renewal is in March and we are evaluating Qualtrics because this keeps happening.",
            "Every month someone spends two days cleaning up the data by hand.",
        ],
    },
    {"replies": ["We have decided not to renew at the end of the quarter."]},
    {"replies": ["No more questions please, I have said what I wanted to say."]},
    {
        "replies": [
            "We have been customers for years and this is the first time it let us down.",
            "Not much in the end, an afternoon.",
            "Just a note when it is fixed.",
        ],
        "confirm": "Exactly.",
        "call": "No need, thanks.",
    },
]


def _conversations() -> None:
    """A few recent detractors answer their follow-up conversation, through the engine
    itself (loop.conversation), so the case pages show live ones."""
    from closeloop.loop import conversation
    from closeloop.loop.models import Conversation

    talks = (
        Conversation.objects.filter(
            status=Conversation.Status.NOT_STARTED, case__response__is_demo=True
        )
        .exclude(case__response__comment="")
        .select_related("case")
        .order_by("-case__created_at")[: len(DEMO_CONVERSATIONS)]
    )
    for talk, script in zip(talks, DEMO_CONVERSATIONS, strict=False):
        replies = list(script["replies"])
        step = conversation.opening(talk)[1]
        while True:
            if step in ("confirm", "call") and step in script:
                text = script[step]
            elif replies:
                text = replies.pop(0)
            else:
                break
            turn = conversation.answer(talk, text)
            if turn.done or not turn.messages:
                break
            step = turn.messages[-1].step


# Who owns the top themes, and what they are doing about them: (theme, title, status,
# days from the seed to the target date, or days since it shipped).
DEMO_ROADMAP = [
    ("performance", "Exports stream as they are built", "shipped", -40),
    ("performance", "Dashboards load in under two seconds", "in_progress", 21),
    ("bugs", "Sync retries instead of failing silently", "in_progress", -5),
    ("integrations", "Salesforce connector keeps custom fields", "planned", 60),
    ("billing", "Invoices carry your PO number", "planned", 35),
    ("usability", "Bulk edit on the accounts list", "planned", 90),
    ("missing-feature", "Scheduled exports to S3 and Google Drive", "in_progress", 28),
    ("support", "Weekend cover for enterprise tickets", "planned", 45),
    ("pricing", "Seat-based pricing for small teams", "dropped", 30),
]


# Protocol sheets of the top themes: (theme, team, next steps, loop in, approved answers).
DEMO_SHEETS: list[tuple[str, str, list[str], str, list[tuple[str, str]]]] = [
    (
        "billing",
        "Billing & accounts",
        [
            "Open the invoice history and confirm what was charged",
            "Refund a duplicate the same day; credit notes need a manager",
            "Tell the customer when it will show on their statement",
        ],
        "Finance — billing-ops@closeloop.demo.example",
        [
            (
                "Duplicate charge refunded",
                "Hi {first_name},\n\nYou were charged twice; the second charge is refunded "
                "today and shows on your statement within five working days. I have added a "
                "check on {account} so it cannot happen again.\n\n{owner_first_name}",
            ),
            (
                "PO numbers on invoices",
                "Hi {first_name},\n\nFrom your next invoice the PO number is printed under "
                "the invoice number. Which PO should we use for {account}?\n\n"
                "{owner_first_name}",
            ),
        ],
    ),
    (
        "performance",
        "Platform",
        [
            "Ask for the page, the time of day and the size of the workspace",
            "Check the status page and the incident log for that hour",
            "Open an engineering ticket with the workspace id if it repeats",
        ],
        "Engineering on-call — #platform-oncall",
        [
            (
                "Slowness during the outage",
                "Hi {first_name},\n\nThe slowness you saw came from the database outage "
                "that week; it is fixed and we added capacity so a spike like that cannot "
                "slow {account} again. If you still see it, reply with the page and the time."
                "\n\n{owner_first_name}",
            )
        ],
    ),
]


def _sheets(owners: list[User]) -> None:
    """Protocol sheets on the top themes, each owned by a team of the demo's owners."""
    from closeloop.loop import protocols
    from closeloop.team.models import Membership, Team
    from closeloop.themes.models import Theme

    for i, (slug, team_name, steps, loop_in, answers) in enumerate(DEMO_SHEETS):
        theme = Theme.objects.filter(slug=slug).first()
        if theme is None:
            continue
        team, made = Team.objects.get_or_create(name=team_name)
        if made:
            for user in owners[2 * i : 2 * i + 2]:
                Membership.objects.get_or_create(team=team, user=user)
        protocols.set_sheet(
            theme,
            team=team,
            approved_answers=[{"title": t, "body": b} for t, b in answers],
            next_steps=steps,
            loop_in=loop_in,
        )


def _roadmap(owners: list[User]) -> None:
    """Owners on the top themes and a few roadmap items in every state (one overdue)."""
    from closeloop.loop.models import RoadmapItem
    from closeloop.themes.models import Theme

    now = timezone.now()
    themes = {t.slug: t for t in Theme.objects.filter(slug__in={r[0] for r in DEMO_ROADMAP})}
    for i, theme in enumerate(themes.values()):
        theme.owner = owners[i % len(owners)]
        theme.save(update_fields=["owner"])
    RoadmapItem.objects.bulk_create(
        RoadmapItem(
            theme=themes[slug],
            title=title,
            status=status,
            target_date=(now + timedelta(days=days)).date() if status != "shipped" else None,
            shipped_at=now + timedelta(days=days) if status == "shipped" else None,
            created_by=themes[slug].owner,
            created_at=now - timedelta(days=60),
            updated_at=now - timedelta(days=10),
        )
        for slug, title, status, days in DEMO_ROADMAP
        if slug in themes
    )


def _discovery() -> None:
    """Ask the worker to look for new themes in the last quarter once it has read it."""
    from closeloop.core.periods import today
    from closeloop.themes.discovery import request_discovery

    request_discovery(today() - timedelta(days=EMERGING_DAYS - 1), today())


# Days before the seed that the demo's outage began; answers soon after it are harsher.
OUTAGE_DAYS_AGO = 75


def _incidents(now: datetime) -> None:
    """A few events on the timeline: a release, the outage (with its spike), a price change."""
    from closeloop.insights.models import Incident

    Incident.objects.bulk_create(
        [
            Incident(
                kind=Incident.Kind.RELEASE,
                title="Release 5.0: the new editor (demo)",
                started_at=now - timedelta(days=220),
            ),
            Incident(
                kind=Incident.Kind.OUTAGE,
                title="EU region outage, 9 hours (demo)",
                description="Database failover stalled; EU customers could not log in.",
                started_at=now - timedelta(days=OUTAGE_DAYS_AGO),
                ended_at=now - timedelta(days=OUTAGE_DAYS_AGO, hours=-9),
            ),
            Incident(
                kind=Incident.Kind.PRICE_CHANGE,
                title="Mid-market list price +12% at renewal (demo)",
                started_at=now - timedelta(days=150),
            ),
        ]
    )


# How each demo owner works: hours to a first personal touch (median), the chance
# they never get to a case, and how often the customer then talks to them.
OWNER_HABITS = [(5.0, 0.02, 0.45), (20.0, 0.05, 0.35), (40.0, 0.12, 0.3), (70.0, 0.25, 0.2)]
COMMITMENTS = [
    "Ship SSO with Okta in the next release",
    "Fix the duplicate-contact sync bug and backfill the data",
    "Credit the double charge and add PO numbers to invoices",
    "Run a second training session for their team",
    "Move them to the annual plan at last year's price",
    "Add the account to the performance beta",
]


def _case_history(rng: random.Random, owners: list[User]) -> None:
    """Closed and open follow-up cases for the year's older detractor answers.

    Triage leaves answers older than its freshness window alone (they are history,
    not news), so a new install would show a program with no past; this writes one
    the way the owners above would have worked, with replies, outcomes, the odd
    commitment, and accounts that later churned — more often where nobody followed up.
    """
    from closeloop.loop.models import Activity, FollowUpCase, Task, TriagePolicy

    now = timezone.now()
    policy = TriagePolicy.current()
    rules = policy.rules
    habits = {owner.pk: OWNER_HABITS[i % len(OWNER_HABITS)] for i, owner in enumerate(owners)}
    by_pk = {owner.pk: owner for owner in owners}
    answers = (
        Response.objects.filter(is_demo=True, score__lte=6, cases__isnull=True)
        .exclude(created_at__gte=now - timedelta(days=3))
        .select_related("account", "person")
        .order_by("created_at", "id")
    )
    cases, activities = [], []
    churn: dict[int, tuple[float, datetime, str]] = {}
    promises: list[tuple[FollowUpCase, str, datetime, datetime, datetime | None]] = []
    for response in answers:
        account = response.account
        tier, arr = (account.tier, account.arr_cents) if account else ("", 0)
        band = nps.band(response.score)
        action = rules.action_for(nps.Category.DETRACTOR, band, rules.value_of(tier, arr))
        if action is None:
            continue
        owner = by_pk.get(account.owner_id) if account and account.owner_id else None
        owner = owner or rng.choice(owners)
        median_hours, never, talks = habits[owner.pk]
        opened = response.created_at + timedelta(minutes=rng.randrange(1, 10))
        if action.automated:
            touch = (
                None if rng.random() < 0.03 else opened + timedelta(minutes=rng.randrange(2, 30))
            )
            talks = 0.15
        elif rng.random() < never:
            touch = None
        else:
            touch = opened + timedelta(hours=rng.lognormvariate(0, 0.8) * median_hours)
        replied = touch is not None and touch < now and rng.random() < talks
        age_days = (now - opened).days
        if age_days < 10 and rng.random() < 0.6:
            status, resolution = "in_conversation" if replied else "contacted", ""
        elif replied:
            status = "closed"
            resolution = rng.choices(["resolved", "cant_fix", "no_response"], [55, 35, 10])[0]
        else:
            status, resolution = "closed", "no_response"
        if touch is None and status != "closed":
            status = "open"
        case = FollowUpCase(
            person=response.person,
            account=account,
            response=response,
            score=response.score,
            band=band.value if band else "",
            action=action.value,
            policy=policy,
            rule="demo history",
            due_at=opened + timedelta(hours=48),
            owner=owner,
            status=status,
            resolution=resolution,
            close_reason="demo history" if status == "closed" else "",
            created_at=opened,
            updated_at=opened,
            first_touch_at=touch if touch is None or touch < now else None,
            closed_at=min(now, opened + timedelta(days=rng.randrange(2, 20)))
            if status == "closed"
            else None,
        )
        cases.append((case, replied))
        if account is not None:
            # An account's churn risk is set by its worst-handled case.
            risk = 0.05 if resolution == "resolved" else 0.12 if touch else 0.35
            last = churn.get(account.pk, (0.0, opened, tier))
            churn[account.pk] = (max(risk, last[0]), max(opened, last[1]), tier)
    made = FollowUpCase.objects.bulk_create([case for case, _ in cases])
    next_answers.refresh({case.person_id for case in made})
    for case, (_, replied) in zip(made, cases, strict=True):
        activities.append(Activity(case=case, kind="created", created_at=case.created_at))
        if replied and case.first_touch_at:
            at = case.first_touch_at + timedelta(hours=rng.randrange(1, 72))
            if rng.random() < 0.6:
                activities.append(
                    Activity(case=case, kind="reply_received", text="(demo reply)", created_at=at)
                )
            else:
                activities.append(
                    Activity(
                        case=case,
                        kind="call_logged",
                        data={"outcome": "talked"},
                        actor=case.owner,
                        created_at=at,
                    )
                )
            if case.resolution == "resolved" and rng.random() < 0.5:
                due = at + timedelta(days=rng.randrange(7, 60))
                done = due - timedelta(days=rng.randrange(0, 5)) if rng.random() < 0.7 else None
                promises.append((case, rng.choice(COMMITMENTS), at, due, done))
    tasks = Task.objects.bulk_create(
        Task(
            case=case,
            kind=Task.Kind.COMMITMENT,
            title=title,
            due_at=due,
            owner=case.owner,
            created_at=at,
            done_at=done if done and done < now else None,
        )
        for case, title, at, due, done in promises
    )
    activities += [
        Activity(
            case=task.case,
            kind="committed",
            actor=task.owner,
            created_at=task.created_at,
            text=f"promised: {task.title} (by {task.due_at:%Y-%m-%d %H:%M} UTC)",
            data={"task": task.pk},
        )
        for task in tasks
    ]
    Activity.objects.bulk_create(activities)
    calls = {a.case_id for a in activities if a.kind == "call_logged"}
    steadier = _follow_through(rng, [case for case, _ in cases], calls, now)
    churned: dict[int, datetime] = {}
    for pk, (risk, last_case, tier) in churn.items():
        when = last_case + timedelta(days=rng.randrange(20, 150))
        risk *= steadier.get(pk, 1.0)
        if when < now and rng.random() < risk * (1.5 if tier == "smb" else 1.0):
            churned[pk] = when
    _background_churn(rng, churned, now)
    _billing_history(rng, churned, now)
    _product_signals(rng, churned, now)


# The monthly chance that an account leaves for reasons of its own (a budget cut, a
# merger, its champion gone), by tier: about 35% a year for small businesses, 15% for
# mid-market, 7% for enterprise, as B2B SaaS logo churn commonly runs. It is scaled by
# how its people's answers of the 90 days before read: a mean below 7 ×2.5, from 7 to
# below 9 ×1, 9 and above ×0.5 (detractors leave at several times the promoters' rate).
BACKGROUND_CHURN = {"smb": 0.03, "mid-market": 0.013, "enterprise": 0.006}
CHURN_BY_LEVEL = ((7.0, 2.5), (9.0, 1.0), (11.0, 0.5))


def _background_churn(rng: random.Random, churned: dict[int, datetime], now: datetime) -> None:
    """Churn beyond the history's badly handled cases, month by month over the year."""
    answers: dict[int, list[tuple[datetime, int]]] = {}
    for account_id, at, score in Response.objects.filter(is_demo=True).values_list(
        "account_id", "created_at", "score"
    ):
        answers.setdefault(account_id, []).append((at, score))
    for account in Account.objects.filter(is_demo=True).order_by("pk"):
        if account.pk in churned:
            continue
        for back in range(12, 0, -1):
            start = now - timedelta(days=30.4 * back)
            seen = [
                s for at, s in answers.get(account.pk, []) if start - timedelta(90) <= at < start
            ]
            mean = sum(seen) / len(seen) if seen else 8.0
            scale = next(times for below, times in CHURN_BY_LEVEL if mean < below)
            if rng.random() < BACKGROUND_CHURN.get(account.tier, 0.02) * scale:
                churned[account.pk] = min(now, start + timedelta(days=rng.uniform(0, 30.4)))
                break


def _product_signals(rng: random.Random, churned: dict[int, datetime], now: datetime) -> None:
    """Product usage (as Segment's calls roll up: users, their active days) and support
    tickets over the year, related to churn the way docs/insights.md assumes.

    Each of an account's people uses the product on 45% of days (one in five never
    does). In the 60 days before an account churns, use falls to a fifth and then
    stops at the churn; it opens 3–8 more tickets then, half of them high or urgent,
    with more reopens and poor ratings. False alarms: a third of the accounts dip for
    30–45 days somewhere in the year (use at a third) and recover, and one live account
    in eight is fading now (its use falls over the last 30 days). Every account opens
    tickets at its own steady rate (0–10 a year, 15% urgent or high, most rated 3–5).
    Seats paid are 0.9–1.4 times the account's people.
    The demo writes the per-day roll-ups directly rather than sending each event.
    """
    from closeloop.integrations.models import Ticket, UsageDay, UsageIdentity

    days = 365
    today = now.date()
    accounts = {a.pk: a for a in Account.objects.filter(is_demo=True).order_by("pk")}
    people: dict[int, list[Person]] = {}
    for person in Person.objects.filter(account__is_demo=True).order_by("pk"):
        people.setdefault(person.account_id or 0, []).append(person)
    fading = {pk for pk in accounts if pk not in churned and rng.random() < 1 / 8}
    dips: dict[int, tuple[int, int]] = {}
    for pk in accounts:
        if rng.random() < 1 / 3:
            start = rng.randrange(40, days)
            dips[pk] = (start, start - rng.randrange(30, 46))
    groups, users, seats = [], [], []
    for pk, account in accounts.items():
        members = people.get(pk, [])
        groups.append(
            UsageIdentity(kind="group", ref=account.external_id or str(pk), account=account)
        )
        paid = max(3, round(len(members) * rng.uniform(0.9, 1.4)))
        account.properties = {**account.properties, "seats": paid}
        seats.append(account)
        for person in members:
            if rng.random() < 1 / 5:
                continue
            users.append(
                UsageIdentity(
                    kind="user",
                    ref=f"demo-user-{person.pk}",
                    group_ref=account.external_id or "",
                    person=person,
                    account=account,
                    traits={"email": person.email},
                )
            )
    UsageIdentity.objects.bulk_create(groups + users, batch_size=2000)
    Account.objects.bulk_update(seats, ["properties"])
    rows = []
    for user in users:
        assert user.account is not None
        pk = user.account.pk
        left = churned.get(pk)
        dip = dips.get(pk)
        for back in range(days):
            day = today - timedelta(days=back)
            rate = 0.45
            if left is not None:
                until = (left.date() - day).days
                if until < 0:
                    continue
                rate *= 0.2 + 0.8 * min(1.0, until / 60)
            elif pk in fading and back < 30:
                rate *= 0.15 + 0.85 * back / 30
            if dip is not None and dip[0] >= back > dip[1]:
                rate /= 3
            if rng.random() < rate:
                at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
                    hours=rng.uniform(8, 18)
                )
                if at <= now:
                    rows.append(
                        UsageDay(identity=user, day=day, events=rng.randint(1, 40), last_at=at)
                    )
    UsageDay.objects.bulk_create(rows, batch_size=5000)
    tickets = []
    for pk, account in accounts.items():
        left = churned.get(pk)
        end = left or now
        span = (end - (now - timedelta(days=days))).total_seconds() / 86400
        steady = [
            (end - timedelta(days=rng.uniform(0, span)), False)
            for _ in range(round(rng.uniform(0, 10) * span / 365))
        ]
        leaving = (
            [(left - timedelta(days=rng.uniform(1, 60)), True) for _ in range(rng.randint(3, 8))]
            if left is not None
            else []
        )
        for i, (opened, before_churn) in enumerate(steady + leaving):
            urgent = rng.random() < (0.5 if before_churn else 0.15)
            closed = opened + timedelta(days=rng.uniform(0.2, 12 if urgent else 6))
            still_open = closed > now or (left is None and rng.random() < 0.03)
            tickets.append(
                Ticket(
                    source="api",
                    ticket_id=f"demo-{pk}-{i}",
                    account=account,
                    org_ref=account.external_id or "",
                    subject=rng.choice(DEMO_TICKETS),
                    status="open" if still_open else "closed",
                    priority=rng.choice(["urgent", "high"]) if urgent else "normal",
                    opened_at=opened,
                    closed_at=None if still_open else closed,
                    reopens=1 if rng.random() < (0.3 if before_churn else 0.08) else 0,
                    csat=None
                    if still_open or rng.random() < 0.5
                    else (rng.randint(1, 3) if before_churn else rng.randint(2, 5)),
                    updated_at=min(now, closed),
                )
            )
    Ticket.objects.bulk_create(tickets)


DEMO_TICKETS = [
    "Export times out on large reports",
    "SSO login loops back to the start page",
    "Invoice shows the wrong plan",
    "Sync errors since the last release",
    "How do I add a teammate?",
    "Dashboard loads slowly in the morning",
]


# Why demo accounts left (Stripe's cancellation feedback values, and what people wrote).
CHURN_REASONS = [
    "too_expensive; the renewal price went up and we could not justify it",
    "switched_service; moved to a competitor with a better reporting module",
    "missing_features; needed SSO and audit logs",
    "low_quality; too many sync errors after the spring release",
    "unused; the team that used it was reorganised",
    "customer_service; tickets took a week to get an answer",
]


def _billing_history(rng: random.Random, churned: dict[int, datetime], now: datetime) -> None:
    """Churn as the billing system records it, with the signs that came before.

    In the weeks before an account churns its billing often warns first: a scheduled
    cancellation (about half), a downgrade (a third) or a failed payment (two in five).
    Every account sees the same warnings now and then over the year, before any churn
    (a failed payment 20% a year, a downgrade 12%, a scheduled cancellation later
    withdrawn 8%). This is the relation the health score's billing weights assume
    (docs/insights.md).
    """
    from closeloop.integrations.models import AccountSignal
    from closeloop.surveys.models import AccountChange

    accounts = {a.pk: a for a in Account.objects.filter(is_demo=True).order_by("pk")}
    changes, signals = [], []
    warnings = [
        ("cancel_scheduled", 0.5, 0.08),
        ("downgrade", 0.33, 0.12),
        ("payment_failed", 0.4, 0.2),
    ]
    for pk, account in accounts.items():
        left = churned.get(pk)
        for kind, before_churn, yearly in warnings:
            if left is not None and rng.random() < before_churn:
                at = left - timedelta(days=rng.randrange(5, 60))
                signals.append(AccountSignal(account=account, kind=kind, at=at, detail="(demo)"))
            if rng.random() < yearly:
                at = now - timedelta(days=rng.uniform(0, 365))
                if left is None or at < left - timedelta(days=60):
                    signals.append(
                        AccountSignal(account=account, kind=kind, at=at, detail="(demo)")
                    )
        if left is not None:
            reason = rng.choice(CHURN_REASONS)
            account.churned_at, account.churn_reason = left, reason
            changes.append(
                AccountChange(
                    account=account,
                    kind=AccountChange.Kind.CHURNED,
                    at=left,
                    arr_before_cents=account.arr_cents,
                    reason=reason,
                    source="csv",
                )
            )
    Account.objects.bulk_update(
        [a for a in accounts.values() if a.churned_at is not None], ["churned_at", "churn_reason"]
    )
    AccountChange.objects.bulk_create(changes)
    AccountSignal.objects.bulk_create(signals)


# How the demo's detractors are typed, the gestures their owners made, and how much each
# raises the chance that the check-back finds the customer recovered (passive or better).
DEMO_TYPES = [("leaving", 10, -0.25), ("evaluating", 12, -0.1), ("invested", 35, 0.05)]
DEMO_TYPES += [("loyal", 23, 0.15), ("", 20, 0.0)]
DEMO_GESTURES = [
    ("credit", 20, 0.0, (200, 3000)),
    ("discount", 10, 0.0, (500, 8000)),
    ("extended_trial", 5, 0.05, None),
    ("training_session", 25, 0.15, None),
    ("executive_note", 10, 0.1, None),
    ("priority_support", 15, 0.1, None),
    ("roadmap_commitment", 15, 0.05, None),
]
CHECK_BACK_COMMENTS = {
    True: ["Much better since the fix, thank you.", "Working fine now.", ""],
    False: ["Still happening every week.", "Nothing has changed for us.", ""],
}


def _follow_through(
    rng: random.Random, cases: list[Any], calls: set[int], now: datetime
) -> dict[int, float]:
    """Types, gestures and answered check-backs on the demo's history, so the program's
    breakdowns by action, channel, type and gesture have something to tell apart.

    Returns, per account, how its churn risk changes: a customer who told the check-back
    things got better is less likely to leave; one who said they were leaving, more.
    """
    from closeloop.loop.models import Activity, CheckBack, FollowUpCase, Gesture
    from closeloop.surveys.models import SurveyRequest

    type_lift = {kind: lift for kind, _, lift in DEMO_TYPES}
    gesture_lift = {kind: lift for kind, _, lift, _ in DEMO_GESTURES}
    steadier: dict[int, float] = {}
    gestures, answers, checks = [], [], []
    for case in cases:
        kind = rng.choices([t[0] for t in DEMO_TYPES], [t[1] for t in DEMO_TYPES])[0]
        case.detractor_type, case.detractor_type_by = kind, "person" if kind else ""
        made = None
        if case.first_touch_at and case.status != "open" and rng.random() < 0.3:
            g = rng.choices(DEMO_GESTURES, [g[1] for g in DEMO_GESTURES])[0]
            made = g[0]
            value = rng.randrange(*g[3]) * 100 if g[3] else None
            gestures.append(
                Gesture(
                    case=case,
                    kind=made,
                    value_cents=value,
                    currency="USD" if value else "",
                    actor=case.owner,
                    created_at=case.first_touch_at + timedelta(days=rng.randrange(1, 5)),
                )
            )
        if case.account_id and kind == "leaving":
            steadier[case.account_id] = max(steadier.get(case.account_id, 0.0), 1.8)
        asked = case.closed_at + timedelta(days=14) if case.closed_at else None
        if case.resolution != "resolved" or asked is None or asked > now or rng.random() > 0.65:
            continue
        chance = 0.45 + type_lift[kind] + gesture_lift.get(made or "", 0.0)
        chance += 0.15 if case.pk in calls else 0.0
        better = rng.random() < chance
        at = asked + timedelta(hours=rng.randrange(2, 96))
        if at > now:
            continue
        request = SurveyRequest(
            person=case.person,
            survey=case.response.survey,
            purpose=SurveyRequest.Purpose.CHECK_BACK,
            status=SurveyRequest.Status.ANSWERED,
            scheduled_at=asked,
            sent_at=asked,
            answered_at=at,
            status_reason=f"check-back on case {case.pk}",
        )
        score = rng.randint(7, 10) if better else rng.randint(2, 6)
        answers.append(
            (
                case,
                request,
                Response(
                    person=case.person,
                    survey=case.response.survey,
                    account=case.account,
                    score=score,
                    comment=rng.choice(CHECK_BACK_COMMENTS[better]),
                    source=Response.Source.EMAIL,
                    is_demo=True,
                    created_at=at,
                    updated_at=at,
                ),
            )
        )
        if case.account_id and better:
            steadier[case.account_id] = min(steadier.get(case.account_id, 1.0), 0.4)
    FollowUpCase.objects.bulk_update(cases, ["detractor_type", "detractor_type_by"], 500)
    Gesture.objects.bulk_create(gestures)
    SurveyRequest.objects.bulk_create([r for _, r, _ in answers])
    for _, request, response in answers:
        response.request = request
    responses = Response.objects.bulk_create([a for _, _, a in answers])
    for (case, request, _), response in zip(answers, responses, strict=True):
        checks.append(CheckBack(case=case, request=request, response=response))
    CheckBack.objects.bulk_create(checks)
    Activity.objects.bulk_create(
        Activity(
            case=case,
            kind="answer_joined",
            text=f"check-back answered {response.score}/10 (was {case.score})",
            data={"response": response.pk},
            created_at=response.created_at,
        )
        for (case, _, _), response in zip(answers, responses, strict=True)
    )
    Activity.objects.bulk_create(
        Activity(
            case=g.case,
            kind="gesture",
            actor=g.actor,
            text=g.get_kind_display()
            + (f" worth {g.currency} {g.value_cents / 100:,.2f}" if g.value_cents else ""),
            data={
                "gesture": g.pk,
                "gesture_kind": g.kind,
                "value_cents": g.value_cents,
                "currency": g.currency,
            },
            created_at=g.created_at,
        )
        for g in gestures
    )
    return steadier


def _owners() -> list[User]:
    manager, _ = User.objects.get_or_create(
        username="demo-manager",
        defaults={
            "first_name": "Morgan",
            "last_name": "Reyes (demo)",
            "role": Role.MANAGER,
            "email": "morgan.reyes@demo.example",
            "password": make_password(None),
        },
    )
    agents = []
    for first, last in [
        ("Jordan", "Park"),
        ("Sasha", "Klein"),
        ("Robin", "Osei"),
        ("Taylor", "Fox"),
    ]:
        agent, _ = User.objects.get_or_create(
            username=f"demo-{first.lower()}",
            defaults={
                "first_name": first,
                "last_name": f"{last} (demo)",
                "role": Role.AGENT,
                "manager": manager,
                "email": f"{first.lower()}@demo.example",
                "password": make_password(None),
            },
        )
        agents.append(agent)
    return agents
