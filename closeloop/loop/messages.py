"""What an alert says: the facts of a case as an owner reads them, in a Slack message
and in an email."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from closeloop.delivery.models import Delivery

from . import batch
from .models import Activity, FollowUpCase
from .payloads import case_url, conversation_of


def money(cents: int, currency: str = "USD") -> str:
    return f"{currency} {cents / 100:,.0f}"


def _when(case: FollowUpCase) -> str:
    return f"{case.due_at:%a %d %b %H:%M} UTC" if case.due_at else "no deadline"


def headline(case: FollowUpCase) -> str:
    who = case.person.name or case.person.email or str(case.person)
    where = f" at {case.account.name}" if case.account else ""
    if case.score is None:
        fall = case.health or {}
        return f"Health fell {fall.get('was')} → {fall.get('score')}{where} (contact: {who})"
    return f"{case.loop.capitalize()} {case.score}/10 from {who}{where}"


def _facts(case: FollowUpCase) -> list[tuple[str, str]]:
    account = case.account
    facts = [
        ("Score", case.score_label),
        ("Account", account.name if account else "—"),
        ("ARR", money(account.arr_cents, account.currency) if account else "—"),
        ("Tier", (account.tier or "—") if account else "—"),
        ("Owner", case.owner.display_name if case.owner else "unassigned"),
        ("Due", _when(case)),
        ("Action", case.action_enum.label),
    ]
    return facts


def summary_facts(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """A follow-up conversation's summary as the facts an owner reads, most telling first."""
    return [
        ("Themes", ", ".join(summary.get("themes", [])) or "—"),
        ("Detractor type", summary.get("detractor_type", "unknown")),
        ("Churn intent", "yes" if summary.get("churn_intent") else "no"),
        ("Competitor", summary.get("competitor") or "—"),
        ("Wants a call", "yes" if summary.get("wants_call") else "no"),
        ("Urgency", summary.get("urgency", "normal")),
        ("Root cause", summary.get("root_cause") or "—"),
        ("Desired fix", summary.get("desired_fix") or "—"),
        ("Impact", summary.get("impact") or "—"),
    ]


def summary_text(summary: dict[str, Any]) -> str:
    """The summary in an email to the owner: every fact, then the customer's words."""
    lines = [f"{k}: {v}" for k, v in summary_facts(summary)]
    if summary.get("quotes"):
        lines += ["", "In their words:"] + [f"“{q}”" for q in summary["quotes"]]
    return "\n".join(lines)


def _conversation_facts(case: FollowUpCase) -> tuple[list[tuple[str, str]], str]:
    """The conversation's summary as a channel's facts (Slack shows ten), and its key quote."""
    talk = conversation_of(case)
    summary = talk.summary if talk is not None else {}
    facts = [
        ("Status", talk.get_status_display() if talk is not None else "—"),
        *summary_facts(summary)[:8],
        ("Owner", case.owner.display_name if case.owner else "unassigned"),
    ]
    quotes = summary.get("quotes") or []
    return [(k, v[:300]) for k, v in facts], (quotes[0] if quotes else "")


def _urgent_quote(case: FollowUpCase) -> str:
    latest = case.activities.filter(kind=Activity.Kind.URGENT).order_by("-id").first()
    return latest.text if latest is not None else ""


def slack_message(case: FollowUpCase, event: str) -> dict[str, Any]:
    """A Block Kit message with the facts an owner needs and a button to the case."""
    title = headline(case)
    facts = _facts(case)
    comment = case.comment_text or "(no comment)"
    if event == "case.escalated":
        title = f"Escalated (level {case.escalation_level}): {title}"
    elif event == "case.closed":
        title = f"Closed ({case.get_resolution_display()}): {title}"
    elif event == "conversation.completed":
        title = f"Conversation ended: {title}"
        facts, quote = _conversation_facts(case)
        comment = quote or comment
    elif event == "case.urgent":
        title = f"Urgent: {title}"
        comment = _urgent_quote(case) or comment
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{k}*\n{_slack_text(v)}"} for k, v in facts[:10]
            ],
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "> " + _slack_escape(comment)[:2900]},
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open case"},
                    "url": case_url(case),
                }
            ],
        },
    ]
    # The fallback text shows in notifications: escaped too, so a comment's "<!channel>"
    # or "<@U123>" never pings anyone.
    return {"text": _slack_text(f"{title}: {comment[:200]}"), "blocks": blocks}


def _slack_text(text: str) -> str:
    """Text as Slack shows it literally: `&`, `<` and `>` escaped (no mentions, no links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_escape(text: str) -> str:
    """A quoted block of text: escaped, each line quoted."""
    return _slack_text(text).replace("\n", "\n> ")


def alert_email(case: FollowUpCase, event: str) -> tuple[str, str]:
    """Subject and plain-text body of an alert to one of our users."""
    prefix = {
        "case.escalated": "Escalated: ",
        "case.closed": "Closed: ",
        "case.urgent": "Urgent: ",
        "conversation.completed": "Conversation ended: ",
    }.get(event, "")
    subject = f"{prefix}{headline(case)} — due {_when(case)}"
    lines = [headline(case), ""]
    lines += [f"{k}: {v}" for k, v in _facts(case)]
    label = "Comment:" if case.response is not None else "Why its health fell:"
    lines += ["", label, case.comment_text or "(no comment)", ""]
    if event == "conversation.completed":
        facts, quote = _conversation_facts(case)
        lines += ["Follow-up conversation:"] + [f"{k}: {v}" for k, v in facts[:-1]]
        lines += ([f"In their words: “{quote}”"] if quote else []) + [""]
    elif event == "case.urgent":
        lines += ["Urgent:", _urgent_quote(case), ""]
    steps = case.playbook
    if steps:
        lines += ["Playbook:"] + [f"- {s}" for s in steps] + [""]
    lines += [f"Open the case: {case_url(case)}"]
    return subject, "\n".join(lines)


def alert_mail(
    case: FollowUpCase, to: str, subject: str, body: str, purpose: str, **extra: Any
) -> None:
    """Queue an alert email to one of our users (or a channel's address)."""
    batch.add(
        Delivery(
            kind=Delivery.Kind.EMAIL,
            purpose=purpose,
            case=case,
            to=to,
            from_email=settings.DEFAULT_FROM_EMAIL,
            subject=subject,
            body=body,
            **extra,
        )
    )
