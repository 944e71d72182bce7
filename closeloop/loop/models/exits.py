"""Exit interviews: when an account churns, its champion is asked why (docs/integrations.md)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from closeloop.surveys.models import Account, AccountChange, Person, Response, SurveyRequest


class ExitInterview(models.Model):
    """One churn's exit interview: who was asked and what they answered, or why nobody
    was asked (`skipped`)."""

    change = models.OneToOneField(
        AccountChange, on_delete=models.CASCADE, related_name="exit_interview"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="exit_interviews")
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.SET_NULL)
    request = models.OneToOneField(
        SurveyRequest,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="exit_interview",
    )
    response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    skipped = models.CharField(max_length=200, blank=True, help_text="why nobody was asked")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"exit interview for account {self.account_id}"
