"""Django's registration of the api app."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "closeloop.api"
    label = "api"
    verbose_name = "API"
