"""Django's registration of the web app."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "closeloop.web"
    label = "web"
    verbose_name = "Web pages"
