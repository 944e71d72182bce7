"""Django's registration of the integrations app."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "closeloop.integrations"
    label = "integrations"
    verbose_name = "Integrations"
