"""Forms behind the pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from closeloop.surveys import csvio


class ResponseFilterForm(forms.Form):
    """The segment and period filters shared by the dashboard and the responses list."""

    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    category = forms.ChoiceField(
        required=False,
        choices=[
            ("", "All classes"),
            ("detractor", "Detractors"),
            ("passive", "Passives"),
            ("promoter", "Promoters"),
        ],
    )
    band = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any band"),
            ("severe", "Severe (0–2)"),
            ("moderate", "Moderate (3–4)"),
            ("mild", "Mild (5–6)"),
        ],
    )
    tier = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": "Tier"}))
    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Search comments", "type": "search"}),
    )


class ImportForm(forms.Form):
    """A CSV upload with the choice of what it holds and what to do with bad rows."""

    kind = forms.ChoiceField(
        choices=[
            ("responses", "Responses"),
            ("people", "People"),
            ("accounts", "Accounts"),
            ("delighted", "A Delighted export (responses or people)"),
        ],
        label="The file holds",
    )
    file = forms.FileField(label="CSV file (UTF-8)")
    valid_only = forms.BooleanField(
        required=False, label="Import the valid rows even if some rows have problems"
    )
    dry_run = forms.BooleanField(required=False, label="Check only: write nothing")

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > settings.CSV_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {settings.CSV_UPLOAD_MAX_BYTES // (1024 * 1024)} MB."
            )
        return upload

    def clean_kind(self) -> str:
        kind = str(self.cleaned_data["kind"])
        if kind not in csvio.KINDS:
            raise forms.ValidationError("Choose responses, people or accounts.")
        return kind


class ApiKeyForm(forms.Form):
    """A new API key: what it is for, and whether it may write."""

    name = forms.CharField(
        max_length=100,
        label="What the key is for",
        widget=forms.TextInput(attrs={"placeholder": "e.g. billing sync"}),
    )
    read_only = forms.BooleanField(required=False, label="Read only (cannot create or change data)")
