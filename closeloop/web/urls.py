"""Pages for people."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import announcements, cases, insights, settings_pages, surveys, views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("health", views.health, name="health"),
    path("", views.dashboard, name="dashboard"),
    path("trend.csv", views.export_trend, name="export-trend"),
    path("insights/segments/", insights.segments, name="segments"),
    path("insights/segments.csv", insights.export_segments, name="export-segments"),
    path("insights/program/", insights.program_page, name="program"),
    path("insights/program.csv", insights.export_program, name="export-program"),
    path("insights/transitions/", insights.transitions_page, name="transitions"),
    path("insights/transitions.csv", insights.export_transitions, name="export-transitions"),
    path("insights/risk/", insights.risk_page, name="risk"),
    path("insights/risk.csv", insights.export_risk, name="export-risk"),
    path("insights/incidents/", insights.incidents_page, name="incidents"),
    path("insights/report/", insights.report_page, name="report"),
    path("insights/calculators/", insights.calculators_page, name="calculators"),
    path("responses/", views.responses, name="responses"),
    path("responses/export.csv", views.export_responses, name="export-responses"),
    path("people/export.csv", views.export_people, name="export-people"),
    path("accounts/export.csv", views.export_accounts, name="export-accounts"),
    path("import/", views.import_csv, name="import"),
    path("settings/api-keys/", views.api_keys, name="api-keys"),
    path("cases/", cases.inbox, name="inbox"),
    path("cases/<int:pk>/", cases.case_detail, name="case"),
    path("cases/<int:pk>/act", cases.case_act, name="case-act"),
    path("notifications/", cases.notifications, name="notifications"),
    path("announcements/", announcements.announcements, name="announcements"),
    path("announcements/<int:pk>/", announcements.announcement, name="announcement"),
    path("surveys/", surveys.surveys, name="surveys"),
    path("surveys/silence/", surveys.silence, name="silence"),
    path("surveys/silence.csv", surveys.export_silence, name="export-silence"),
    path("surveys/<slug:slug>/", surveys.survey, name="survey"),
    path("surveys/<slug:slug>/preview/<str:what>/", surveys.preview, name="survey-preview"),
    path("surveys/<slug:slug>/waves/new/", surveys.new_wave, name="wave-new"),
    path("surveys/<slug:slug>/waves/<int:pk>/", surveys.wave, name="wave"),
    path("settings/quarantine/", cases.quarantine, name="quarantine"),
    path("settings/follow-up/", settings_pages.follow_up_settings, name="settings-follow-up"),
    path("settings/routing/", settings_pages.routing_settings, name="settings-routing"),
    path("settings/channels/", settings_pages.channel_settings, name="settings-channels"),
    path("settings/templates/", settings_pages.template_settings, name="settings-templates"),
    path(
        "settings/templates/<str:action>/<str:locale>/",
        settings_pages.template_edit,
        name="settings-template",
    ),
]
