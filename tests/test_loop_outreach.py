"""Outreach templates: the shipped defaults pass the linter, and each rule catches its mistake."""

from __future__ import annotations

import pytest

from closeloop.core.errors import FieldError
from closeloop.loop.models import OutreachTemplate
from closeloop.loop.outreach import DEFAULTS, fill, lint, template_for
from closeloop.loop.policy import Action

GOOD = (
    "Hi {first_name},\n\nThanks for your score of {score} out of 10.\n\n"
    "What was the main experience behind your score?\n\n{owner_name}"
)


@pytest.mark.parametrize("key", sorted(DEFAULTS, key=str))
def test_it_ships_defaults_that_pass_the_linter(key: tuple[Action, str]) -> None:
    draft = DEFAULTS[key]
    assert lint(draft.subject, draft.body, key[1]) == []


def test_it_has_an_english_default_for_every_action() -> None:
    assert all((action, "en") in DEFAULTS for action in Action)


def rules(body: str, subject: str = "Your {score}/10") -> set[str]:
    return {f.rule for f in lint(subject, body)}


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (GOOD.replace("{score}", "7"), "score"),
        (GOOD + "\nAnything else you want to add?", "one-question"),
        (
            GOOD.replace("What was the main experience behind your score?", "Thanks."),
            "one-question",
        ),
        (GOOD.replace("What was the main experience", "Was it the price change"), "open-question"),
        (
            GOOD.replace("What was the main experience behind your score?", "How can we improve?"),
            "open-question",
        ),
        (GOOD.replace("{owner_name}", "The Team"), "sender"),
        (GOOD.replace("Thanks for", "We are so sorry about"), "apology"),
        (GOOD + "\nHere is a 20% off coupon.", "discount"),
        (GOOD + "\nWe hope to earn a 9 or 10 next time.", "score-begging"),
        (GOOD + "\n" + "word " * 100, "length"),
        (GOOD.replace("{first_name}", "{customer.name}"), "variables"),
    ],
)
def test_it_flags_each_broken_rule(body: str, rule: str) -> None:
    assert rule in rules(body)


def test_it_passes_a_good_template() -> None:
    assert rules(GOOD) == set()


def test_it_refuses_unknown_variables_and_stray_braces_when_filling() -> None:
    with pytest.raises(FieldError, match="unknown variable"):
        fill("Hi {nickname}", {})
    with pytest.raises(FieldError, match="literal braces"):
        fill("Hi {first_name", {})


@pytest.mark.django_db
def test_it_prefers_a_saved_template_in_the_customers_language() -> None:
    assert template_for(Action.AUTOMATED_BRIEF_QUESTION, "de-AT").body.startswith("Hallo")
    assert template_for(Action.CALL, "de").body.startswith("Hi")
    OutreachTemplate.objects.create(
        action=Action.CALL, locale="de", subject="Ihre {score}/10", body="Hallo {first_name}"
    )
    assert template_for(Action.CALL, "de-DE").body == "Hallo {first_name}"
