"""URL map: pages, the admin, and the API."""

from django.contrib import admin
from django.urls import include, path

from closeloop.api.inbound import inbound_email
from closeloop.api.integrations import (
    intercom_webhook,
    segment_api,
    stripe_webhook,
    zendesk_webhook,
)
from closeloop.api.v1 import api
from closeloop.web import conversation_pages, survey_pages

urlpatterns = [
    path("admin/", admin.site.urls),
    # Signed by the sender, not an API key: plain views ahead of the API's routes.
    path("api/v1/integrations/stripe", stripe_webhook, name="stripe-webhook"),
    path("api/v1/integrations/zendesk", zendesk_webhook, name="zendesk-webhook"),
    path("api/v1/integrations/intercom", intercom_webhook, name="intercom-webhook"),
    path("api/v1/segment", segment_api, name="segment"),
    path("api/v1/segment/v1/<str:call>", segment_api, name="segment-call"),
    path("api/v1/", api.urls),
    # Delighted's v1 API, for integrations written against it (docs/delighted.md).
    path("v1/", include("closeloop.api.delighted_urls")),
    path("inbound/email", inbound_email, name="inbound-email"),
    # What customers open from survey emails and links.
    path("s/a/<str:value>/", survey_pages.answer, name="survey-answer"),
    path("s/o/<str:value>.gif", survey_pages.opened, name="survey-opened"),
    path("s/<str:value>/", survey_pages.page, name="survey-page"),
    path("u/<str:value>/", survey_pages.unsubscribe, name="survey-unsubscribe"),
    path("l/<slug:slug>/", survey_pages.link_survey, name="survey-link"),
    # The follow-up conversation a detractor's first email links to.
    path("c/<str:value>/", conversation_pages.page, name="conversation"),
    path("c/<str:value>/messages", conversation_pages.messages, name="conversation-messages"),
    path("", include("closeloop.web.urls")),
]
