"""Re-triage: put an open case under the policy in force, when a person asks.

A new policy version never alters the cases already open (each keeps the version that
made it: its action, deadline, playbook, check-back and type steps). An admin who wants
a case to follow the new rules re-triages it: its action and rule are decided again
from its band and account value, and a deadline not yet met is set again from when the
case opened. Nothing already sent is sent again; a case that has not been touched and
is now automated gets its first email.
"""

from __future__ import annotations

from datetime import timedelta

from closeloop.core import nps
from closeloop.core.errors import FieldError
from closeloop.team.models import User

from . import notify, payloads, sla
from .models import Activity, FollowUpCase, TriagePolicy
from .policy import Value


def retriage(case: FollowUpCase, actor: User | None) -> str:
    """Apply the current policy to an open case; what changed, in a line (also logged)."""
    if case.is_closed:
        raise FieldError("status", "only an open case can be re-triaged")
    if case.loop == FollowUpCase.Loop.HEALTH:
        raise FieldError(
            "loop", "a health case was opened by no answer: there is nothing to triage"
        )
    policy = TriagePolicy.current()
    if case.policy_id == policy.pk:
        return f"The case already follows policy v{policy.version}."
    config = policy.rules
    account = case.account
    value = config.value_of(account.tier, account.arr_cents) if account else Value.STANDARD
    band = nps.Band(case.band) if case.band else None
    category = nps.Category(case.loop)
    action = config.action_for(category, band, value)
    if action is None:
        raise FieldError("policy", f"policy v{policy.version} has no follow-up for this case")
    was = case.action_enum
    was_version = case.policy.version
    case.policy, case.action = policy, action.value
    case.high_value = value == Value.HIGH
    case.rule = f"{band.value} × {value.value}" if band else f"{category.value} loop"
    fields = ["policy", "action", "high_value", "rule"]
    if case.loop == FollowUpCase.Loop.DETRACTOR and case.first_touch_at is None:
        due = sla.deadline(
            case.created_at,
            config.sla_hours_for(band, value),
            config.business_hours,
            case.owner.time_zone if case.owner else None,
        )
        hours = config.type_sla_hours.get(case.detractor_type) if case.detractor_type else None
        if hours:
            due = min(due, case.created_at + timedelta(hours=hours))
        case.due_at = due
        fields.append("due_at")
        if case.escalation_level == 0:
            case.next_escalation_at = due
            fields.append("next_escalation_at")
    case.priority = sla.compute_priority(case)
    fields.append("priority")
    case.save_changes(*fields)
    change = f"{was.label} → {action.label}" if was != action else f"still {action.label.lower()}"
    due_text = f"; due {case.due_at:%Y-%m-%d %H:%M} UTC" if "due_at" in fields else ""
    line = f"re-triaged from policy v{was_version} to v{policy.version}: {change}{due_text}"
    case.log(Activity.Kind.NOTE, line, actor, retriaged=policy.version)
    if action.automated and not was.automated and case.first_touch_at is None:
        talk = payloads.conversation_of(case)
        notify.first_outreach(case, talk.url if talk else "")
    notify.case_event(case, "case.updated")
    return line[0].upper() + line[1:] + "."
