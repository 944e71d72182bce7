"""Django's registration of the insights app."""

from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "closeloop.insights"
    label = "insights"
    verbose_name = "Insights"
