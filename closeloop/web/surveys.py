"""Survey pages: the surveys and their reach, one survey's settings and previews, waves, silence.

Choosing and scheduling people lives in `surveys.waves`, the figures in
`surveys.reach`; these views read forms and render.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.clickjacking import xframe_options_sameorigin

from closeloop.core.errors import FieldError
from closeloop.surveys import mail, reach, waves
from closeloop.surveys.ingest import PersonData
from closeloop.surveys.models import Survey, SurveyRequest, Upload, Wave
from closeloop.surveys.texts import LANGUAGES, texts
from closeloop.team.models import User

from . import survey_pages
from .forms import SurveyForm, WaveForm
from .views import _base, reported, stream


def _user(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    return user


def _manager(request: HttpRequest) -> User:
    """Surveys reach customers: admins and managers set them up and send them."""
    user = _user(request)
    if not user.can_manage():
        raise PermissionDenied("only admins and managers change surveys and send waves")
    return user


@login_required
def surveys(request: HttpRequest) -> HttpResponse:
    """Every survey with its reach, and a form for a new one."""
    form = SurveyForm()
    if request.method == "POST":
        _manager(request)
        form = SurveyForm(request.POST)
        if form.is_valid():
            survey = form.save()
            messages.success(request, f"Survey “{survey.name}” created. Add people in a wave.")
            return redirect("survey", survey.slug)
    figures = reach.reach_by(reach.survey_requests(), "survey_id")
    rows = [
        (s, figures.get(s.pk, reach.Reach()), s.answers)
        for s in Survey.objects.annotate(answers=Count("responses")).order_by("name")
    ]
    return render(
        request,
        "web/surveys.html",
        _base(
            rows=rows,
            form=form,
            median_percent=reach.MEDIAN_PERCENT,
        ),
        status=422 if form.errors else 200,
    )


@login_required
def survey(request: HttpRequest, slug: str) -> HttpResponse:
    """One survey: its waves and their reach, previews, and its settings."""
    item = get_object_or_404(Survey, slug=slug)
    form = SurveyForm(instance=item)
    if request.method == "POST":
        _manager(request)
        form = SurveyForm(request.POST, instance=item)
        if form.is_valid():
            item = form.save()
            messages.success(request, "Survey saved.")
            return redirect("survey", item.slug)
        item.refresh_from_db()
    requests = reach.survey_requests().filter(survey=item)
    by_wave = reach.reach_by(requests, "wave_id")
    wave_rows = [
        (w, by_wave.get(w.pk, reach.Reach()))
        for w in item.waves.select_related("created_by").order_by("-starts_at", "-pk")
    ]
    return render(
        request,
        "web/survey.html",
        _base(
            item=item,
            form=form,
            total=reach.reach(requests),
            unwaved=by_wave.get(None),
            follow_ups=reach.reach(
                SurveyRequest.objects.filter(survey=item, purpose=SurveyRequest.Purpose.FOLLOW_UP)
            ),
            wave_rows=wave_rows,
            median_percent=reach.MEDIAN_PERCENT,
            languages=[(code, texts(code)["lang_name"]) for code in LANGUAGES],
            lang=_lang(request),
        ),
        status=422 if form.errors else 200,
    )


def _lang(request: HttpRequest) -> str:
    lang = request.GET.get("lang", "en")
    return lang if lang in LANGUAGES else "en"


@xframe_options_sameorigin  # shown in a frame on the survey's own page
@login_required
def preview(request: HttpRequest, slug: str, what: str) -> HttpResponse:
    """The survey's email (HTML or text) or hosted page, to an example person, links inert."""
    item = get_object_or_404(Survey, slug=slug)
    lang = _lang(request)
    reminder = request.GET.get("reminder") == "1"
    if what == "email":
        return HttpResponse(mail.preview(item, lang, reminder).html)
    if what == "text":
        email = mail.preview(item, lang, reminder)
        return HttpResponse(f"Subject: {email.subject}\n\n{email.text}", content_type="text/plain")
    return survey_pages.preview(request, item, lang)


_UPLOAD_SALT = "closeloop.web.wave-upload"


def _audience(form: WaveForm, user: User) -> tuple[waves.Audience, str]:
    """Who the form chose, and (for a file) a signed reference to the stored file, so the
    second step schedules from the same file without sending it again."""
    data = form.cleaned_data
    people: list[PersonData] = []
    kept = ""
    if data["source"] == "csv":
        upload = data.get("file")
        if upload is not None:
            stored = Upload.keep(upload, user)
        else:
            stored = _kept_upload(data.get("csv_upload", ""))
        people, _ = waves.read_csv(bytes(stored.data))
        kept = signing.dumps(stored.pk, salt=_UPLOAD_SALT)
    audience = waves.Audience(
        source=data["source"],
        account_ids=[a.pk for a in data.get("accounts") or []],
        tier=data.get("tier", ""),
        plan=data.get("plan", ""),
        industry=data.get("industry", ""),
        company_size=data.get("company_size", ""),
        property_key=data.get("property_key", "").strip(),
        property_value=data.get("property_value", ""),
        csv_people=people,
    )
    return audience, kept


def _kept_upload(token: str) -> Upload:
    """The file checked in the first step (kept for a day), or a FieldError naming `file`."""
    try:
        pk = signing.loads(token, salt=_UPLOAD_SALT, max_age=int(Upload.KEPT.total_seconds()))
        return Upload.objects.get(pk=int(pk))
    except (signing.BadSignature, Upload.DoesNotExist, TypeError, ValueError):
        raise FieldError(
            "file", "choose the CSV file (the one checked is no longer kept)"
        ) from None


@login_required
def new_wave(request: HttpRequest, slug: str) -> HttpResponse:
    """Add people to a survey: choose them, see what would happen, then schedule."""
    item = get_object_or_404(Survey, slug=slug)
    user = _manager(request)
    form = WaveForm(initial={"spread_days": 0, "source": "segment"})
    plan = None
    status = 200
    if request.method == "POST":
        form = WaveForm(request.POST, request.FILES)
        if not form.is_valid():
            status = 422
        else:
            data = form.cleaned_data
            with reported(request) as outcome:
                audience, kept = _audience(form, user)
                if request.POST.get("action") == "schedule":
                    wave = waves.start(
                        item,
                        audience,
                        name=data["name"].strip(),
                        at=data["starts_at"],
                        spread_days=data["spread_days"],
                        created_by=user,
                    )
                    messages.success(request, f"Wave “{wave.name}” scheduled.")
                    return redirect("wave", item.slug, wave.pk)
                plan = waves.plan(item, audience)
                if audience.source == "csv":
                    # Keep the file's people for the second step, so it is not uploaded twice.
                    form = WaveForm({**request.POST.dict(), "csv_upload": kept})
                    form.is_valid()
            if outcome.refused:
                status = 422
    return render(
        request,
        "web/wave_new.html",
        _base(item=item, form=form, plan=plan, max_wave=waves.MAX_WAVE),
        status=status,
    )


@login_required
def wave(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """A wave's progress: scheduled → sent → delivered → opened → answered, and each person."""
    item = get_object_or_404(
        Wave.objects.select_related("survey", "created_by"), pk=pk, survey__slug=slug
    )
    if request.method == "POST":
        user = _manager(request)
        with reported(request):
            if request.POST.get("action") != "cancel":
                raise FieldError("action", "unknown action")
            n = waves.cancel_rest(item, user)
            messages.success(request, f"{n} request(s) not yet sent were cancelled.")
        return redirect("wave", slug, pk)
    status = request.GET.get("status", "")
    requests = item.requests.select_related("person__account").order_by("scheduled_at", "pk")
    if status in SurveyRequest.Status.values:
        requests = requests.filter(status=status)
    page = Paginator(requests, 50).get_page(request.GET.get("page"))
    figures = reach.reach(item.requests.all())
    template = "web/_wave_progress.html" if request.headers.get("HX-Request") else "web/wave.html"
    return render(
        request,
        template,
        _base(
            item=item,
            r=figures,
            page=page,
            status=status,
            statuses=SurveyRequest.Status.choices,
            median_percent=reach.MEDIAN_PERCENT,
        ),
    )


@login_required
def silence(request: HttpRequest) -> HttpResponse:
    """People who answered before and ignored their last two invitations, per account."""
    people = reach.silent_people().order_by("account__name", "email")
    groups = reach.silence_by_account(people)
    return render(
        request,
        "web/silence.html",
        _base(
            groups=groups, people=sum(len(g.people) for g in groups), grace=reach.SILENCE_GRACE.days
        ),
    )


SILENCE_HEADER = [
    "account",
    "account_arr",
    "tier",
    "email",
    "name",
    "last_score",
    "last_answered_at",
    "silent_since",
]


def _silence_rows(people: Any) -> Any:
    for p in people:
        account = p.account
        yield [
            account.name if account else "",
            account.arr if account else "",
            account.tier if account else "",
            p.email,
            p.name,
            p.last_score,
            p.last_answered_at.isoformat() if p.last_answered_at else "",
            p.silent_since.isoformat() if p.silent_since else "",
        ]


@login_required
def export_silence(request: HttpRequest) -> StreamingHttpResponse:
    """The silent people as CSV, one row each, with their account."""
    people = reach.silent_people().order_by("account__name", "email").iterator(2000)
    return stream("silence.csv", SILENCE_HEADER, _silence_rows(people))
