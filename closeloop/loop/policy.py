"""The triage policy: which action each answer gets, how fast, and what the playbook says.

Admins edit it (page and API); each save is a new numbered version, and every
case records the version and the matrix cell that made it, so "why did this
customer get an automated email?" always has an answer. The defaults are
docs/domain.md §3.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from closeloop.core.nps import Band, Category
from closeloop.core.schemas import RefusesNul


class Action(StrEnum):
    """What the follow-up of one answer consists of."""

    CALL = "call"
    PERSONAL_EMAIL_CALL = "personal_email_call"
    PERSONAL_EMAIL_QUESTIONS = "personal_email_questions"
    AUTOMATED_EMAIL_SURVEY = "automated_email_survey"
    AUTOMATED_BRIEF_QUESTION = "automated_brief_question"
    AUTOMATED_ONE_QUESTION = "automated_one_question"
    AUTOMATED_THANKS_REVIEW = "automated_thanks_review"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]

    @property
    def automated(self) -> bool:
        """Automated actions send their first email with no person involved."""
        return self.value.startswith("automated_")


ACTION_LABELS: dict[Action, str] = {
    Action.CALL: "Phone/video call",
    Action.PERSONAL_EMAIL_CALL: "Personal email offering a call",
    Action.PERSONAL_EMAIL_QUESTIONS: "Personal email with specific questions",
    Action.AUTOMATED_EMAIL_SURVEY: "Automated email + follow-up survey",
    Action.AUTOMATED_BRIEF_QUESTION: "Automated email, one brief question",
    Action.AUTOMATED_ONE_QUESTION: "Automated email: what would make it better",
    Action.AUTOMATED_THANKS_REVIEW: "Automated thanks + review/referral ask",
}


class Value(StrEnum):
    """The second axis of triage: how much the customer is worth to us."""

    HIGH = "high_value"
    STANDARD = "standard"


class _Strict(RefusesNul):
    model_config = ConfigDict(extra="forbid")


class HighValue(_Strict):
    """An account is high-value if its tier is listed, or its ARR reaches the threshold."""

    tiers: list[Annotated[str, Field(min_length=1, max_length=40)]] = ["enterprise"]
    arr_at_least: int | None = Field(
        default=50_000, ge=0, description="ARR in currency units; null turns the ARR test off"
    )


class Sponsor(_Strict):
    """The highest-value accounts, whose executive sponsor hears of every detractor case."""

    tiers: list[Annotated[str, Field(min_length=1, max_length=40)]] = []
    arr_at_least: int | None = Field(
        default=100_000, ge=0, description="ARR in currency units; null turns the ARR test off"
    )


class Row(_Strict):
    high_value: Action
    standard: Action


class SlaHours(_Strict):
    default: int = Field(default=48, ge=1, le=24 * 30)
    severe_high_value: int = Field(default=24, ge=1, le=24 * 30)


DEFAULT_HEALTH_PLAYBOOK = [
    "Read the reasons: which signs of churn appeared, and since when.",
    "Call your contact at the account; ask how things are going before naming any figure.",
    "Agree one next step with a date, and note it on the case.",
]


class HealthCases(_Strict):
    """A falling account health score opens a case for the account's owner
    (docs/insights.md, "Health cases"), when the account has no open case."""

    enabled: bool = True
    fall_points: int = Field(
        default=20, ge=1, le=100, description="a fall of at least this many points"
    )
    days: int = Field(default=30, ge=7, le=180, description="over this many days")
    below: int = Field(
        default=50, ge=1, le=100, description="to a score below this (50: the lower watch band)"
    )
    action: Action = Action.CALL
    sla_hours: int = Field(default=48, ge=1, le=24 * 30)
    quiet_days: int = Field(
        default=30,
        ge=0,
        le=365,
        description="no new health case for an account this soon after one",
    )
    playbook: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=lambda: list(DEFAULT_HEALTH_PLAYBOOK)
    )

    @field_validator("action")
    @classmethod
    def _personal(cls, action: Action) -> Action:
        if action.automated:
            raise ValueError("a health case waits for a person: call or personal email")
        return action


class Escalation(_Strict):
    second_level_after_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="after the first escalation, with still no touch"
    )


class BusinessHours(_Strict):
    """When on, SLA clocks only run inside these hours, in the owner's time zone."""

    enabled: bool = False
    start: time = time(9, 0)
    end: time = time(17, 0)
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4], description="0 = Monday"
    )

    @field_validator("start", "end")
    @classmethod
    def _wall_clock(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give a wall-clock time without an offset, e.g. 09:00")
        return value

    @model_validator(mode="after")
    def _sane(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError("business_hours.end must be after business_hours.start")
        if not self.weekdays:
            raise ValueError("business_hours.weekdays must name at least one day")
        return self


DEFAULT_PLAYBOOKS: dict[str, list[str]] = {
    "0": [
        "Apologise and listen before explaining anything.",
        "Offer a concrete recovery gesture once you understand the problem.",
        "Escalate to the account's executive sponsor.",
        "Log the conversation in the CRM.",
    ],
    "1": ["Apologise and ask what went wrong.", "Make personal contact (call if you can)."],
    "2": ["Apologise and explain the action you will take, with a date."],
    "3": ["Ask an open question about the main issue.", "Notify the account manager."],
    "4": ["Acknowledge the feedback.", "Ask for specifics: when, where, what they tried."],
    "5": ["Ask what would have made the experience better."],
    "6": ["Thank them and ask for one concrete improvement."],
    "7": ["Ask the one thing that would make the product better.", "Watch for drift."],
    "8": ["Ask the one thing that would make the product better.", "Watch for drift."],
    "9": ["Thank them.", "Ask for a review or a referral.", "Invite them to a case study."],
    "10": ["Thank them.", "Ask for a review or a referral.", "Invite them to a case study."],
}


DETRACTOR_TYPES = ("leaving", "evaluating", "invested", "loyal")
# Each kind of detractor (docs/domain.md §5) gets its own steps, after the score's.
DEFAULT_TYPE_PLAYBOOKS: dict[str, list[str]] = {
    "leaving": [
        "Call within 24 hours: understand the decision before arguing with it.",
        "Bring in the executive sponsor at the highest-value accounts.",
    ],
    "evaluating": [
        "Send the competitive comparison for what they are evaluating.",
        "Offer a session with a product specialist.",
    ],
    "invested": ["Put them in touch with the product team that owns their problem."],
    "loyal": [
        "Thank them personally for their years with you.",
        "Check back once it is fixed.",
    ],
}


class PolicyConfig(_Strict):
    """Everything an admin can tune about triage, validated field by field."""

    high_value: HighValue = Field(default_factory=lambda: HighValue())
    executive_sponsor: Sponsor = Field(default_factory=lambda: Sponsor())
    matrix: dict[Band, Row] = Field(
        default_factory=lambda: {
            Band.SEVERE: Row(high_value=Action.CALL, standard=Action.PERSONAL_EMAIL_CALL),
            Band.MODERATE: Row(
                high_value=Action.PERSONAL_EMAIL_QUESTIONS,
                standard=Action.AUTOMATED_EMAIL_SURVEY,
            ),
            Band.MILD: Row(
                high_value=Action.AUTOMATED_BRIEF_QUESTION,
                standard=Action.AUTOMATED_BRIEF_QUESTION,
            ),
        }
    )
    passive_action: Action | None = Action.AUTOMATED_ONE_QUESTION
    promoter_action: Action | None = Action.AUTOMATED_THANKS_REVIEW
    playbooks: dict[str, list[Annotated[str, Field(min_length=1, max_length=500)]]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_PLAYBOOKS.items()}
    )
    sla_hours: SlaHours = Field(default_factory=lambda: SlaHours())
    escalation: Escalation = Field(default_factory=lambda: Escalation())
    business_hours: BusinessHours = Field(default_factory=lambda: BusinessHours())
    fresh_within_hours: int = Field(
        default=168,
        ge=1,
        le=24 * 365,
        description="answers older than this when they arrive (historical imports) open no case",
    )
    follow_up_survey_days: int = Field(
        default=30, ge=7, le=365, description="when the automated_email_survey action asks again"
    )
    type_playbooks: dict[str, list[Annotated[str, Field(min_length=1, max_length=500)]]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_TYPE_PLAYBOOKS.items()},
        description="steps per detractor type, shown after the score's",
    )
    type_sla_hours: dict[str, Annotated[int, Field(ge=1, le=24 * 30)]] = Field(
        default_factory=lambda: {"leaving": 24},
        description="a shorter deadline for the first touch once the type is known",
    )
    check_back_days: int = Field(
        default=14,
        ge=0,
        le=365,
        description="days after a case is resolved that its owner asks whether it got better "
        "(0: never)",
    )
    check_back_days_by_action: dict[Action, Annotated[int, Field(ge=0, le=365)]] = Field(
        default_factory=dict, description="per action, instead of check_back_days"
    )
    max_open_personal_cases: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="routing passes over an owner holding this many open cases that wait for "
        "a person (calls, personal emails); null: no limit",
    )
    health_cases: HealthCases = Field(default_factory=lambda: HealthCases())
    acknowledge_personal: bool = Field(
        default=True,
        description="detractors whose action waits for a person (a call, a personal email) "
        "get a short acknowledgement from the owner at once; it is not the first touch",
    )

    @field_validator("matrix")
    @classmethod
    def _every_band(cls, matrix: dict[Band, Row]) -> dict[Band, Row]:
        missing = [b.value for b in Band if b not in matrix]
        if missing:
            raise ValueError(f"matrix needs a row for every band; missing {', '.join(missing)}")
        return matrix

    @field_validator("type_playbooks", "type_sla_hours")
    @classmethod
    def _types(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if k not in DETRACTOR_TYPES]
        if bad:
            raise ValueError(
                f"keyed by detractor type ({', '.join(DETRACTOR_TYPES)}), not {bad[0]!r}"
            )
        return value

    @field_validator("playbooks")
    @classmethod
    def _scores(cls, playbooks: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = [k for k in playbooks if k not in DEFAULT_PLAYBOOKS]
        if bad:
            raise ValueError(f"playbooks are keyed by score '0'..'10', not {bad[0]!r}")
        return playbooks

    def value_of(self, tier: str, arr_cents: int) -> Value:
        """High-value by tier or by ARR."""
        hv = self.high_value
        if tier and tier.lower() in {t.lower() for t in hv.tiers}:
            return Value.HIGH
        if hv.arr_at_least is not None and arr_cents >= hv.arr_at_least * 100:
            return Value.HIGH
        return Value.STANDARD

    def tell_sponsor(self, tier: str, arr_cents: int) -> bool:
        """Whether an account is among the highest-value, whose sponsor is told."""
        rule = self.executive_sponsor
        if tier and tier.lower() in {t.lower() for t in rule.tiers}:
            return True
        return rule.arr_at_least is not None and arr_cents >= rule.arr_at_least * 100

    def action_for(self, category: Category, band: Band | None, value: Value) -> Action | None:
        """The matrix cell (detractors) or the promoter/passive loop; None means no follow-up."""
        if category == Category.PROMOTER:
            return self.promoter_action
        if category == Category.PASSIVE:
            return self.passive_action
        assert band is not None
        row = self.matrix[band]
        return row.high_value if value == Value.HIGH else row.standard

    def sla_hours_for(self, band: Band | None, value: Value) -> int:
        """24h for severe high-value detractors, 48h for the rest (by default)."""
        if band == Band.SEVERE and value == Value.HIGH:
            return self.sla_hours.severe_high_value
        return self.sla_hours.default

    def check_back_after(self, action: Action) -> int:
        """Days after resolution to check back on a case of `action` (0: never)."""
        return self.check_back_days_by_action.get(action, self.check_back_days)

    def playbook(self, score: int, kind: str = "") -> list[str]:
        """The score's steps, then the detractor type's."""
        return list(self.playbooks.get(str(score), [])) + list(self.type_playbooks.get(kind, []))
