"""URL map: pages, the admin, and the API."""

from django.contrib import admin
from django.urls import include, path

from closeloop.api.v1 import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("closeloop.web.urls")),
]
