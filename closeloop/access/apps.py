"""Django's registration of the access app."""

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "closeloop.access"
    label = "access"
    verbose_name = "API access"
