"""The follow-up's records: cases and their timeline (`cases`), the follow-up
conversation (`conversations`), what admins set (`settings`), and fixes shipped
(`announcements`)."""

from .announcements import Announcement
from .cases import (
    CALL_ATTEMPTED,
    CALL_OUTCOMES,
    CALL_REACHED,
    Activity,
    CheckBack,
    FollowUpCase,
    Gesture,
    InboundMessage,
    Notification,
    Task,
    open_at,
    open_filter,
    overdue_filter,
    revenue_at_risk,
    waiting_for_person,
)
from .cases import _reply_token as _reply_token  # named by migration 0001
from .conversations import Conversation, Message
from .exits import ExitInterview
from .roadmap import RoadmapItem
from .settings import OutreachTemplate, RoutingRule, TriagePolicy

__all__ = [
    "CALL_ATTEMPTED",
    "CALL_OUTCOMES",
    "CALL_REACHED",
    "Activity",
    "Announcement",
    "CheckBack",
    "Conversation",
    "ExitInterview",
    "FollowUpCase",
    "Gesture",
    "InboundMessage",
    "Message",
    "Notification",
    "OutreachTemplate",
    "RoadmapItem",
    "RoutingRule",
    "Task",
    "TriagePolicy",
    "open_at",
    "open_filter",
    "overdue_filter",
    "revenue_at_risk",
    "waiting_for_person",
]
