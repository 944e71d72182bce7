"""Django's registration of the surveys app."""

from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "closeloop.surveys"
    label = "surveys"
    verbose_name = "Surveys and responses"
