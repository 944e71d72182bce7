"""Forms behind the pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from closeloop.surveys import csvio
from closeloop.surveys.models import Account, Survey


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
    scope = forms.ChoiceField(
        label="What it may do",
        choices=[
            ("read_write", "Read and write: answers, people, accounts, cases"),
            ("read", "Read only"),
            ("admin", "Admin: also settings, channels (and their secrets), themes"),
        ],
        initial="read_write",
        widget=forms.RadioSelect,
    )


class SurveyForm(forms.ModelForm):  # type: ignore[type-arg]
    """A survey's question, email wording and sending rules."""

    class Meta:
        model = Survey
        fields = [
            "name",
            "slug",
            "question",
            "product_name",
            "subject",
            "intro",
            "thank_you",
            "throttle_days",
            "reminder_days",
            "link_days",
        ]
        widgets = {"intro": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "slug": "In link-survey addresses (/l/<slug>/) and the API; letters, digits, - and _.",
            "question": "{product} is replaced by the product name.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Link surveys already on web pages, and API callers, name the survey by its slug.
            self.fields["slug"].disabled = True
            self.fields["slug"].help_text = "Fixed once created: pages and integrations use it."

    def clean_subject(self) -> str:
        subject = str(self.cleaned_data["subject"])
        if "\n" in subject or "\r" in subject:
            raise forms.ValidationError("An email subject is one line.")
        return subject

    def clean_question(self) -> str:
        question = str(self.cleaned_data["question"])
        if "\n" in question or "\r" in question:
            raise forms.ValidationError("The question is one line.")
        return question


class WaveForm(forms.Form):
    """Who a wave goes to, and when."""

    name = forms.CharField(
        required=False,
        max_length=200,
        label="Wave name",
        widget=forms.TextInput(attrs={"placeholder": "e.g. Q4 relationship survey"}),
    )
    source = forms.ChoiceField(
        choices=[
            ("segment", "A segment of accounts"),
            ("accounts", "Chosen accounts"),
            ("csv", "People in a CSV file"),
        ],
        widget=forms.RadioSelect,
        initial="segment",
        label="Add people from",
    )
    accounts = forms.ModelMultipleChoiceField(
        queryset=Account.objects.order_by("name"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
    )
    tier = forms.CharField(required=False, max_length=40)
    plan = forms.CharField(required=False, max_length=100)
    industry = forms.CharField(required=False, max_length=100)
    company_size = forms.CharField(required=False, max_length=40, label="Company size")
    property_key = forms.CharField(required=False, max_length=100, label="Property")
    property_value = forms.CharField(required=False, max_length=200, label="equals")
    file = forms.FileField(required=False, label="CSV file (the people import's columns)")
    csv_upload = forms.CharField(required=False, widget=forms.HiddenInput)
    starts_at = forms.DateTimeField(
        required=False,
        label="Send from (UTC; empty = now)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    spread_days = forms.IntegerField(
        min_value=0,
        max_value=60,
        initial=0,
        label="Spread over days (0 = all at once)",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if upload is not None and upload.size > settings.CSV_UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {settings.CSV_UPLOAD_MAX_BYTES // (1024 * 1024)} MB."
            )
        return upload
