"""The conversation guide (docs/domain.md §5): five steps, and probes per theme."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    title: str
    advice: str


STEPS = [
    Step(
        "Thank and acknowledge",
        "Thank them and name the actual score. No apology yet: you don't know what happened.",
    ),
    Step(
        "Ask one open question",
        "“What was the primary experience that influenced your score?” Never leading "
        "(“Was it the price change?”), never vague (“How can we improve?”), never "
        "“what would make it a 9 or 10?”.",
    ),
    Step(
        "Listen and probe",
        "Follow their words with the probes for the theme below. Don't ask what you could "
        "look up; don't minimise, defend or correct them.",
    ),
    Step(
        "Summarise and commit",
        "Restate the issue in their words, say what happens next and by when, and record "
        "the promise below so it is tracked.",
    ),
    Step(
        "Follow through",
        "When the fix ships, tell them (“you told us X; we shipped Y”), then check back "
        "that they are still satisfied.",
    ),
]

# Probes by theme slug; "value" covers "not getting value", which has no default theme.
PROBES: dict[str, list[str]] = {
    "usability": ["Which part felt complicated?", "What were you trying to do at that moment?"],
    "support": ["What was your most recent interaction with support?", "How long did it take?"],
    "value": ["What were you expecting to get?", "Which outcome matters most to you?"],
    "missing-feature": [
        "What would it let you do?",
        "How do you work around it today?",
    ],
    "pricing": ["Compared with what?", "Which part doesn't feel worth it?"],
    "performance": ["Where do you notice it being slow or down?", "How often does it happen?"],
    "bugs": ["What happened, and what did you expect?", "Does it still happen?"],
    "onboarding": ["Where did getting started stall?", "Who on your side was setting it up?"],
    "billing": ["Which charge or invoice is wrong?", "What did you expect to pay?"],
    "integrations": ["Which tool are you connecting?", "What should flow between them?"],
    "documentation": ["What were you looking for?", "Where did you look first?"],
}
GENERAL_PROBES = [
    "Can you walk me through the last time it happened?",
    "What did that cost you or your team?",
]


def probes_for(
    themes: Sequence[tuple[str, str, list[str]]], tags: Sequence[str] = ()
) -> list[tuple[str, list[str]]]:
    """The probes of the answer's themes ((slug, name, the theme's own probes)), then of
    its free-text tags we know that are not among them; the general ones when none."""
    found = [(name, probes) for _, name, probes in themes if probes]
    slugs = {slug for slug, _, _ in themes}
    found += [(t, PROBES[t]) for t in tags if t in PROBES and t not in slugs]
    return found or [("general", GENERAL_PROBES)]
