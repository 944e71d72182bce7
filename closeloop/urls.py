"""URL map: pages, the admin, and the API."""

from django.contrib import admin
from django.urls import include, path

from closeloop.api.inbound import inbound_email
from closeloop.api.v1 import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("inbound/email", inbound_email, name="inbound-email"),
    path("", include("closeloop.web.urls")),
]
